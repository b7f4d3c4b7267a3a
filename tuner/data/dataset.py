"""A data set: the training split in memory, the test split sealed behind one counted call.

Only `DataSet.test_split()` reads the test split, and the data set counts
every read (`test_split_reads`), so its owner can prove that a search never
touched it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tuner.core.errors import TunerError

HELD_OUT_FRACTION = 0.2  # test share for data sets that ship without a test split
SPLIT_SEED = 20240101  # fixed: the held-out split must never depend on a study's seed


@dataclass
class DataSet:
    """The training split as float32 images in [0, 1] with a channel axis, and a sealed test split."""

    name: str
    x_train: Any  # an image array, or tuner.data.streaming.FileImages for a streamed folder
    y_train: np.ndarray
    class_names: tuple[str, ...]
    source: str
    _load_test: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False)
    notes: dict[str, Any] = field(default_factory=dict)  # what loading found (unreadable files...), for the study
    test_split_reads: int = field(default=0, init=False)  # how often `test_split` was called on this object

    @property
    def input_shape(self) -> tuple[int, int, int]:
        height, width, channels = self.x_train.shape[1:]
        return int(height), int(width), int(channels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """A short hash of the training images and labels, for model cards."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.x_train).view(np.uint8)[: 1 << 24].tobytes())
        digest.update(self.y_train.tobytes())
        return digest.hexdigest()[:16]

    def at_size(self, size: int) -> DataSet:
        """The same images at `size` x `size` pixels; only image folders can change size."""
        if size == self.input_shape[0]:
            return self
        raise TunerError(
            f"data set {self.name} has a fixed image size {self.input_shape[0]}; tune image_size on image folders only"
        )

    def test_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out test split. Only export may call this."""
        self.test_split_reads += 1
        return self._load_test()


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] with a channel axis."""
    images = images.astype("float32") / 255.0
    return images[..., np.newaxis] if images.ndim == 3 else images


def held_out(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """A fixed stratified (x_train, x_test, y_train, y_test) split for data sets that ship without a test split."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=HELD_OUT_FRACTION, stratify=y, random_state=SPLIT_SEED)


def stratified_subset(dataset: DataSet, size: int, seed: int) -> DataSet:
    """A class-balanced sample of the training split, for quick runs and tests (the test split is kept)."""
    if size <= 0 or size >= len(dataset.y_train):
        return dataset
    if size < dataset.num_classes * 2:
        raise TunerError(f"--subset {size} is too small: use at least {dataset.num_classes * 2} images")
    from sklearn.model_selection import train_test_split

    x, _, y, _ = train_test_split(
        dataset.x_train, dataset.y_train, train_size=size, stratify=dataset.y_train, random_state=seed
    )
    return replace(dataset, x_train=x, y_train=y)
