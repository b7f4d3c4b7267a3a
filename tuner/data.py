"""Data sets, loaded offline-first, with the test split sealed.

`load_dataset` returns the training split as float32 images in [0, 1] with a
channel axis. The test split is not loaded with it: only `DataSet.test_split()`
reads it, and every read is counted in `TEST_SPLIT_READS`, so a test can prove
that a study never touched it. Loads are cached per process so that folds and
trials share one copy in memory.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tuner.errors import TunerError

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
HELD_OUT_FRACTION = 0.2  # test share for data sets that ship without a test split
SPLIT_SEED = 20240101  # fixed: the held-out split must never depend on a study's seed

TEST_SPLIT_READS: list[str] = []  # one entry per read of a sealed test split


@dataclass
class DataSet:
    """The training split in memory, and a sealed handle on the test split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    class_names: tuple[str, ...]
    source: str
    _load_test: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A short hash of the training images and labels, for model cards."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.x_train).view(np.uint8)[: 1 << 24].tobytes())
        digest.update(self.y_train.tobytes())
        return digest.hexdigest()[:16]

    def test_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out test split. Only export and report may call this."""
        TEST_SPLIT_READS.append(self.name)
        return self._load_test()


def _scale(images: np.ndarray) -> np.ndarray:
    images = images.astype("float32") / 255.0
    return images[..., np.newaxis] if images.ndim == 3 else images


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read one IDX file (gzip or plain) with checks that name the file on failure."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise TunerError(f"cannot read {path}: {error}; delete it and reinstall the data set") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expected_dims:
        raise TunerError(f"{path} is not an IDX file of unsigned bytes; delete it and reinstall the data set")
    header_end = 4 + 4 * expected_dims
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_dims)]
    expected = int(np.prod(dims))
    if len(raw) - header_end != expected:
        raise TunerError(
            f"{path} is truncated or corrupt ({len(raw) - header_end} bytes of data, expected {expected}); "
            "delete it and reinstall the data set"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(dims)


def _fashion_dir(data_dir: str | None) -> Path:
    candidates = ([Path(data_dir)] if data_dir else []) + [KERAS_CACHE / "fashion-mnist", DEBIAN_FASHION_DIR]
    for directory in candidates:
        if all((directory / name).exists() for name in FASHION_FILES.values()):
            return directory
    try:  # Keras' own download, for users with internet
        import keras

        keras.datasets.fashion_mnist.load_data()
        return KERAS_CACHE / "fashion-mnist"
    except Exception:
        pass
    looked = ", ".join(str(c) for c in candidates)
    raise TunerError(
        f"Fashion-MNIST not found (looked in {looked}, and Keras' download failed); "
        "run 'apt-get install dataset-fashion-mnist' or pass --data-dir with the four .gz files"
    )


def _load_fashion(data_dir: str | None) -> DataSet:
    directory = _fashion_dir(data_dir)
    x_train = _read_idx(directory / FASHION_FILES["x_train"], 3)
    y_train = _read_idx(directory / FASHION_FILES["y_train"], 1)
    if len(x_train) != len(y_train):
        raise TunerError(f"{directory}: {len(x_train)} training images but {len(y_train)} labels; reinstall the data set")

    def load_test():
        return _scale(_read_idx(directory / FASHION_FILES["x_test"], 3)), _read_idx(
            directory / FASHION_FILES["y_test"], 1
        ).astype("int32")

    return DataSet("fashion", _scale(x_train), y_train.astype("int32"), FASHION_CLASSES, str(directory), load_test)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise TunerError(f"cannot read {path} as .npz ({error}); check the file or download it again") from None


def _held_out(x: np.ndarray, y: np.ndarray):
    """A fixed stratified train/test split for data sets that ship without one."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=HELD_OUT_FRACTION, stratify=y, random_state=SPLIT_SEED)


def load_npz(path: str | Path, name: str = "npz", class_names: tuple[str, ...] | None = None) -> DataSet:
    """An .npz of `x_train, y_train, x_test, y_test` (Keras' layout) or of `x, y`.

    With only `x, y`, a fixed stratified 20% is held out as the test split.
    """
    path = Path(path)
    if not path.exists():
        raise TunerError(f"{path} does not exist; pass the path of an .npz file with arrays x and y")
    arrays = _read_npz(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif {"x", "y"} <= arrays.keys():
        x_train, x_test, y_train, y_test = _held_out(arrays["x"], arrays["y"])
    else:
        raise TunerError(
            f"{path} holds arrays {sorted(arrays)}; expected x and y, or x_train, y_train, x_test and y_test"
        )
    if x_train.ndim not in (3, 4) or len(x_train) != len(y_train):
        raise TunerError(f"{path}: expected images of shape (n, height, width[, channels]) and n labels")
    classes = class_names or tuple(str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1))
    return DataSet(
        name, _scale(x_train), y_train.astype("int32"), classes, str(path),
        lambda: (_scale(x_test), y_test.astype("int32")),
    )


def _load_mnist(data_dir: str | None) -> DataSet:
    candidates = ([Path(data_dir)] if data_dir else []) + [KERAS_CACHE]
    for directory in candidates:
        path = directory if directory.suffix == ".npz" else directory / "mnist.npz"
        if path.exists():
            return load_npz(path, "mnist", DIGIT_CLASSES)
    try:  # Keras' own download, for users with internet
        import keras

        keras.datasets.mnist.load_data()
        return load_npz(KERAS_CACHE / "mnist.npz", "mnist", DIGIT_CLASSES)
    except Exception:
        pass
    looked = ", ".join(str(c) for c in candidates)
    raise TunerError(
        f"MNIST not found (looked in {looked}, and Keras' download failed); "
        "pass --data-dir with mnist.npz, or use the 10,000-digit subset: --data-dir ../shared/data/mnist-10k.npz"
    )


def _load_digits() -> DataSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    x_train, x_test, y_train, y_test = _held_out(images, digits.target.astype("int32"))
    return DataSet("digits", x_train, y_train, DIGIT_CLASSES, "sklearn.datasets.load_digits", lambda: (x_test, y_test))


DATASETS = ("fashion", "mnist", "digits")


def stratified_subset(dataset: DataSet, size: int, seed: int) -> DataSet:
    """A class-balanced sample of the training split, for quick runs and tests."""
    if size <= 0 or size >= len(dataset.y_train):
        return dataset
    if size < dataset.num_classes * 2:
        raise TunerError(f"--subset {size} is too small: use at least {dataset.num_classes * 2} images")
    from sklearn.model_selection import train_test_split

    x, _, y, _ = train_test_split(
        dataset.x_train, dataset.y_train, train_size=size, stratify=dataset.y_train, random_state=seed
    )
    return DataSet(dataset.name, x, y, dataset.class_names, dataset.source, dataset._load_test)


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_dir: str | None = None, subset: int = 0, seed: int = 0, **folder_options) -> DataSet:
    """Load a data set by name (or an .npz path, or `folder:PATH`), cached per process."""
    if name.startswith("folder:") or name == "folder":  # your own images (tuner.image_folder)
        from tuner.image_folder import load_folder

        root = name[len("folder:"):] or data_dir
        if not root:
            raise TunerError("data set 'folder' needs the folder: pass --data-dir PATH or write dataset = 'folder:PATH'")
        return load_folder(root, subset=subset, seed=seed, **folder_options)
    if name == "fashion":
        dataset = _load_fashion(data_dir)
    elif name == "mnist":
        dataset = _load_mnist(data_dir)
    elif name == "digits":
        dataset = _load_digits()
    elif name.endswith(".npz"):
        dataset = load_npz(name)
    else:
        raise TunerError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} or give an .npz path")
    return stratified_subset(dataset, subset, seed)
