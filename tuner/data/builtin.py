"""The built-in data sets: Fashion-MNIST, MNIST, scikit-learn's digits, and .npz files.

Each loader is offline-first: a given folder, Keras' cache, Debian's
`dataset-fashion-mnist`, and only then Keras' own download. A corrupt or
truncated file is named in one line with the fix. Every loader is filed by
name in `DATASETS`: a new built-in data set is one decorated loader.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.registry import Registry
from tuner.data.dataset import DataSet, held_out, scale

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
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

Loader = Callable[[str | None], DataSet]  # data_dir (None: the usual places) -> the data set
DATASETS: Registry[Loader] = Registry("data set", hint="or give an .npz path or folder:PATH")


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


@DATASETS.register("fashion")
def _load_fashion(data_dir: str | None) -> DataSet:
    directory = _fashion_dir(data_dir)
    x_train = _read_idx(directory / FASHION_FILES["x_train"], 3)
    y_train = _read_idx(directory / FASHION_FILES["y_train"], 1)
    if len(x_train) != len(y_train):
        raise TunerError(f"{directory}: {len(x_train)} training images but {len(y_train)} labels; reinstall the data set")

    def load_test() -> tuple[np.ndarray, np.ndarray]:
        return scale(_read_idx(directory / FASHION_FILES["x_test"], 3)), _read_idx(
            directory / FASHION_FILES["y_test"], 1
        ).astype("int32")

    return DataSet("fashion", scale(x_train), y_train.astype("int32"), FASHION_CLASSES, str(directory), load_test)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise TunerError(f"cannot read {path} as .npz ({error}); check the file or download it again") from None


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
        x_train, x_test, y_train, y_test = held_out(arrays["x"], arrays["y"])
    else:
        raise TunerError(f"{path} holds arrays {sorted(arrays)}; expected x and y, or x_train, y_train, x_test and y_test")
    if x_train.ndim not in (3, 4) or len(x_train) != len(y_train):
        raise TunerError(f"{path}: expected images of shape (n, height, width[, channels]) and n labels")
    classes = class_names or tuple(str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1))
    return DataSet(
        name,
        scale(x_train),
        y_train.astype("int32"),
        classes,
        str(path),
        lambda: (scale(x_test), y_test.astype("int32")),
    )


@DATASETS.register("mnist")
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


@DATASETS.register("digits")
def _load_digits(data_dir: str | None = None) -> DataSet:
    """scikit-learn's 1,797 8x8 digits, shipped with scikit-learn (so `data_dir` is not needed)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    x_train, x_test, y_train, y_test = held_out(images, digits.target.astype("int32"))
    return DataSet("digits", x_train, y_train, DIGIT_CLASSES, "sklearn.datasets.load_digits", lambda: (x_test, y_test))


def load_builtin(name: str, data_dir: str | None) -> DataSet:
    """A built-in data set by name, or an .npz path; one line naming the choices for anything else."""
    if name.endswith(".npz"):
        return load_npz(name)
    return DATASETS.get(name)(data_dir)
