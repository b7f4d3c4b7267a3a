"""Images given as arrays (the Python API's `tune((x, y))`): a DataSet, with a sealed test split of their own.

Pixels of an integer type are 0-255 and become [0, 1]; floating-point
pixels above 1 are divided by the training images' maximum; the same
`PixelScale` turns later images (`predict`) into what the models saw. A
channel axis is added to single-channel images. Without a test split, a
fixed stratified fifth of the images is held out as one, as for scikit-learn's
digits (tuner.data.dataset.held_out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.data.dataset import DataSet, held_out


@dataclass(frozen=True)
class PixelScale:
    """How raw pixels become the float32 [0, 1] images the models take."""

    divisor: float

    @classmethod
    def of(cls, images: np.ndarray) -> PixelScale:
        """255 for integer pixels; for floats, their maximum when above 1, else 1."""
        if np.issubdtype(images.dtype, np.integer):
            return cls(255.0)
        top = float(np.max(images)) if images.size else 1.0
        return cls(top if top > 1.0 else 1.0)

    def apply(self, images: Any) -> np.ndarray:
        """`images` as float32 scaled by the divisor, with a channel axis (N, H, W, C)."""
        array = np.asarray(images)
        if array.ndim == 3:
            array = array[..., np.newaxis]
        if array.ndim != 4:
            raise TunerError(
                f"images must be an array of shape (N, height, width) or (N, height, width, channels), got {array.shape}"
            )
        return (array.astype("float32") / self.divisor).clip(0.0, 1.0)


def labels_of(y: Any, count: int) -> np.ndarray:
    """Labels as a 1-D int array of `count` whole numbers from 0 (what a DataSet keeps)."""
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != count:
        raise TunerError(f"labels must be one per image ({count}), got an array of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise TunerError("labels must be whole numbers from 0; encode them first (e.g. sklearn's LabelEncoder)")
    return labels.astype("int64")


def from_arrays(
    x: Any,
    y: Any,
    x_test: Any = None,
    y_test: Any = None,
    class_names: Sequence[str] | None = None,
    name: str = "arrays",
) -> tuple[DataSet, PixelScale]:
    """A DataSet of the given images and labels, and the scale its pixels were given (see the module's docstring)."""
    raw = np.asarray(x)
    scale = PixelScale.of(raw)
    images, labels = scale.apply(raw), labels_of(y, len(raw))
    if (x_test is None) != (y_test is None):
        raise TunerError("give both x_test and y_test, or neither (a fifth of the images is then held out)")
    if x_test is None:
        counts = np.bincount(labels)
        if counts[counts > 0].min() < 2:
            raise TunerError("every class needs at least 2 images to hold a test split out; add images or give x_test")
        x_train, test_images, y_train, test_labels = held_out(images, labels)
    else:
        x_train, y_train = images, labels
        test_raw = np.asarray(x_test)
        test_images, test_labels = scale.apply(test_raw), labels_of(y_test, len(test_raw))
        if test_images.shape[1:] != x_train.shape[1:]:
            raise TunerError(f"test images are {test_images.shape[1:]}, training images {x_train.shape[1:]}; give one size")
    classes = int(max(labels.max(), test_labels.max())) + 1
    names = tuple(class_names) if class_names is not None else tuple(str(c) for c in range(classes))
    if len(names) != classes:
        raise TunerError(f"class_names has {len(names)} names for {classes} classes; give one name per class")
    dataset = DataSet(
        name=name,
        x_train=x_train,
        y_train=np.asarray(y_train),
        class_names=names,
        source=f"arrays of {len(raw)} images",
        _load_test=lambda: (test_images, np.asarray(test_labels)),
    )
    return dataset, scale
