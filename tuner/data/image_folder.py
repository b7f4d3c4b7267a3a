"""Your own images: a folder with one subfolder of PNG/JPEG files per class.

The layout is the one `keras.utils.image_dataset_from_directory` reads. Every
image is resized (stretched) to a square side and read as grayscale or RGB.
Files that cannot be opened as images, and images over the pixel cap
(tuner.data.image_files), are skipped and counted, never fatal; links out
of the folder are refused unless the study sets `follow_links`.

Like the built-in data sets, a fixed stratified 20% of the files is held out
as the test split, unless the folder holds exactly two folders `train/` and
`test/`, each with the same class folders: then those are the splits. The
test files are read only by `DataSet.test_split()`, which counts the read
(see tuner.data). Folders whose pixels would not fit in
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
from tuner.data.image_files import open_image
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
    """(shorter side, is grayscale) from the image header, or None when it is not an image or is over the pixel cap."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as image:
            return min(image.size), image.mode in GRAY_PIL_MODES
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):  # ImageTooLarge is a ValueError
        return None


def _check_link(path: Path, real_root: Path, follow_links: bool) -> None:
    """Refuse a link that leads out of the image folder, unless the study allows it (`follow_links`)."""
    if follow_links or not path.is_symlink():
        return
    target = path.resolve()
    if not target.is_relative_to(real_root):
        raise TunerError(
            f"{path} is a link to {target}, outside the image folder {real_root}; copy the files into the folder, "
            "or allow links out of it with --follow-links (follow_links = true in the study file)"
        )


def _image_files(folder: Path, real_root: Path, follow_links: bool) -> list[Path]:
    """The image files under a class folder, sorted; links are followed (each folder once), links out checked."""
    files, seen, pending = [], set(), [folder]
    while pending:
        current = pending.pop()
        if current.resolve() in seen:  # a link back up would loop
            continue
        seen.add(current.resolve())
        for entry in current.iterdir():
            if entry.is_dir():
                _check_link(entry, real_root, follow_links)
                pending.append(entry)
            elif entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS:
                _check_link(entry, real_root, follow_links)
                files.append(entry)
    return sorted(files)


def scan_folder(root: str | Path, follow_links: bool = False) -> FolderFiles:
    """List class folders and their images; check that there is something to classify.

    Files and folders that are links out of `root` are refused (one TunerError) unless `follow_links`:
    a data set's files stay where its folder says they are.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TunerError(f"image folder {root} does not exist; give a folder with one subfolder of images per class")
    real_root = root.resolve()
    class_folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for folder in class_folders:
        _check_link(folder, real_root, follow_links)
    classes = [p.name for p in class_folders]
    if len(classes) < 2:
        raise TunerError(
            f"image folder {root} has {len(classes)} class folder(s); "
            "put each class's images in its own subfolder, at least two"
        )
    paths, labels, sides, grays, unreadable = [], [], [], [], []
    for label, name in enumerate(classes):
        files = _image_files(root / name, real_root, follow_links)
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


SPLIT_FOLDERS = ("test", "train")  # a folder of exactly these two holds its own split


def _given_split(root: Path, follow_links: bool) -> tuple[FolderFiles, np.ndarray, np.ndarray] | None:
    """The files of a `train/` + `test/` folder, with the positions of each split; None for any other layout."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if tuple(folders) != SPLIT_FOLDERS:
        return None
    for name in SPLIT_FOLDERS:
        _check_link(root / name, root.resolve(), follow_links)
    train, test = scan_folder(root / "train", follow_links), scan_folder(root / "test", follow_links)
    if train.class_names != test.class_names:
        raise TunerError(
            f"image folder {root}: train/ has classes {', '.join(train.class_names)} but test/ has "
            f"{', '.join(test.class_names)}; give both the same class folders"
        )
    files = FolderFiles(
        root,
        train.paths + test.paths,
        np.concatenate([train.labels, test.labels]),
        train.class_names,
        train.sides + test.sides,
        train.grays + test.grays,
        train.unreadable + test.unreadable,
    )
    return files, np.arange(len(train.paths)), np.arange(len(train.paths), len(files.paths))


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
    follow_links: bool = False,
) -> FolderDataSet:
    """Scan, split (fixed, stratified) and load an image folder; cached per process."""
    from sklearn.model_selection import train_test_split

    given = _given_split(Path(root).expanduser(), follow_links) if Path(root).expanduser().is_dir() else None
    if given is not None:  # train/ and test/: the folder's own split
        files, train_idx, test_idx = given
    else:
        files = scan_folder(root, follow_links)
        try:
            train_idx, test_idx = train_test_split(
                np.arange(len(files.paths)), test_size=HELD_OUT_FRACTION, stratify=files.labels, random_state=SPLIT_SEED
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
            "follow_links": follow_links,
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
