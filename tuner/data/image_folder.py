"""Your own images: a folder with one subfolder of PNG/JPEG files per class.

The layout is the one `keras.utils.image_dataset_from_directory` reads. Every
image is resized (stretched) to a square side and read as grayscale or RGB.
Files that cannot be opened as images are skipped and counted, never fatal.

Like the built-in data sets, a fixed stratified 20% of the files is held out
as the test split; its files are read only by `DataSet.test_split()`, which
counts the read (see tuner.data). Folders whose pixels would not fit in
memory are streamed from disk per batch (tuner.streaming).
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.data.dataset import HELD_OUT_FRACTION, SPLIT_SEED, DataSet
from tuner.data.streaming import FileImages, read_image, should_stream

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
COLOR_MODES = ("auto", "grayscale", "rgb")
GRAY_PIL_MODES = ("1", "L", "LA", "I", "I;16", "F")
MAX_AUTO_SIZE = 224  # "auto" image size: the most common side, at most this
PREFIX = "folder:"


@dataclass
class FolderFiles:
    """What a scan found: readable files with labels, and the files it skipped."""

    root: Path
    paths: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    sides: list[int]  # the shorter side of each readable image
    grays: list[bool]  # whether each readable image is grayscale
    unreadable: list[str] = field(default_factory=list)


def _header(path: Path) -> tuple[int, bool] | None:
    """(shorter side, is grayscale) from the image header, or None when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return min(image.size), image.mode in GRAY_PIL_MODES
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def scan_folder(root: str | Path) -> FolderFiles:
    """List class folders and their images; check that there is something to classify."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TunerError(f"image folder {root} does not exist; give a folder with one subfolder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise TunerError(
            f"image folder {root} has {len(classes)} class folder(s); "
            "put each class's images in its own subfolder, at least two"
        )
    paths, labels, sides, grays, unreadable = [], [], [], [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        readable = 0
        for path in files:
            header = _header(path)
            if header is None:
                unreadable.append(str(path))
                continue
            paths.append(str(path))
            labels.append(label)
            sides.append(header[0])
            grays.append(header[1])
            readable += 1
        if readable < 2:
            raise TunerError(
                f"class folder {root / name} has {readable} readable image(s) ({', '.join(IMAGE_EXTENSIONS)}); "
                "add at least two or remove the folder"
            )
    return FolderFiles(root, paths, np.array(labels, dtype="int32"), tuple(classes), sides, grays, unreadable)


def auto_size(sides: list[int]) -> int:
    """The most common shorter side, capped at MAX_AUTO_SIZE."""
    return min(Counter(sides).most_common(1)[0][0], MAX_AUTO_SIZE)


def _channels(color_mode: str, grays: list[bool]) -> int:
    """1 or 3: "auto" is grayscale when every (training) image is."""
    if color_mode not in COLOR_MODES:
        raise TunerError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got {color_mode!r}; fix the study file")
    if color_mode == "auto":
        return 1 if all(grays) else 3
    return 1 if color_mode == "grayscale" else 3


def _read_all(paths: np.ndarray, size: int, channels: int) -> tuple[np.ndarray, list[int]]:
    """Pixels of `paths` in memory, and the positions that could not be decoded."""
    images = np.zeros((len(paths), size, size, channels), dtype="float32")
    failed = []
    for row, path in enumerate(paths):
        try:
            images[row] = read_image(path, size, channels)
        except (OSError, ValueError, SyntaxError):
            failed.append(row)
    return images, failed


@dataclass
class FolderDataSet(DataSet):
    """A DataSet read from an image folder, that can re-read itself at another image size."""

    options: dict[str, Any] = field(default_factory=dict)  # how it was loaded, to load it again at another size

    def at_size(self, size: int) -> FolderDataSet:
        """The same files at `size` x `size` pixels (cached)."""
        if size == self.input_shape[0]:
            return self
        return load_folder(self.options["root"], **{**self.options["kwargs"], "image_size": size})

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update("\n".join(self.options["train_paths"]).encode())
        digest.update(self.y_train.tobytes())
        digest.update(repr(self.input_shape).encode())
        return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def load_folder(
    root: str,
    image_size: int = 0,
    color_mode: str = "auto",
    streaming: bool | str = "auto",
    subset: int = 0,
    seed: int = 0,
) -> FolderDataSet:
    """Scan, split (fixed, stratified) and load an image folder; cached per process."""
    from sklearn.model_selection import train_test_split

    files = scan_folder(root)
    indices = np.arange(len(files.paths))
    try:
        train_idx, test_idx = train_test_split(
            indices, test_size=HELD_OUT_FRACTION, stratify=files.labels, random_state=SPLIT_SEED
        )
    except ValueError as error:
        raise TunerError(f"image folder {root}: cannot hold out a stratified test split ({error}); add images") from None
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    # image size and colour come from the training files alone: the test split stays unseen
    size = image_size or auto_size([files.sides[i] for i in train_idx])
    channels = _channels(color_mode, [files.grays[i] for i in train_idx])
    if 0 < subset < len(train_idx):
        train_idx, _ = train_test_split(train_idx, train_size=subset, stratify=files.labels[train_idx], random_state=seed)
        train_idx = np.sort(train_idx)
    paths = np.array(files.paths, dtype=object)
    train_paths, y_train = paths[train_idx], files.labels[train_idx]
    unreadable = list(files.unreadable)
    streamed = should_stream(streaming, len(train_paths), size, channels)
    x_train: Any
    if streamed:
        x_train = FileImages(train_paths, size, channels)
    else:
        x_train, failed = _read_all(train_paths, size, channels)
        if failed:  # a valid header over broken pixels
            unreadable += [str(train_paths[i]) for i in failed]
            keep = np.setdiff1d(np.arange(len(train_paths)), failed)
            x_train, y_train, train_paths = x_train[keep], y_train[keep], train_paths[keep]

    def load_test() -> tuple[np.ndarray, np.ndarray]:
        images, failed = _read_all(paths[test_idx], size, channels)
        keep = np.setdiff1d(np.arange(len(test_idx)), failed)
        return images[keep], files.labels[test_idx][keep]

    options = {
        "root": root,
        "kwargs": {
            "image_size": image_size,
            "color_mode": color_mode,
            "streaming": streaming,
            "subset": subset,
            "seed": seed,
        },
        "train_paths": [str(p) for p in train_paths],
    }
    notes = {
        "unreadable_images": len(unreadable),
        "unreadable_examples": unreadable[:5],
        "image_size": size,
        "channels": channels,
        "streamed": streamed,
        "test_images": len(test_idx),
    }
    return FolderDataSet(
        f"{PREFIX}{root}", x_train, y_train, files.class_names, str(files.root), load_test, notes=notes, options=options
    )
