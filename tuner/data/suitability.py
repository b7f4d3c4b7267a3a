"""What the data admits: which augmentations make sense, and whether its classes are unbalanced.

Flipping a "2" or a shoe upside down makes a different picture, and an 8x8
digit has no pixels to spare; seed 004's class weights only matter when the
classes are unbalanced. The search turns these facts into the space's traits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tuner.core.spec import AUGMENTATION_KINDS

MIN_SIDE = 16  # below this many pixels a side, augmentation only destroys information
DIGIT_DATASETS = ("mnist", "digits")  # mirror images of digits are not digits
UPRIGHT_DATASETS = ("fashion",)  # clothes photographed upright: a left-right flip is fine, upside down is not
UNBALANCED_RATIO = 1.2  # largest / smallest class count above which class weights are tuned


def applicable_augmentations(name: str, input_shape: Sequence[int], requested: str | list[str] = "auto") -> tuple[str, ...]:
    """The augmentation kinds that make sense for data set `name` at this image size.

    `requested` is the study's `augmentation` setting: "auto", "off", or a
    list of kinds (still limited by the image size).
    """
    if requested == "off" or min(input_shape[:2]) < MIN_SIDE:
        return ()
    if requested != "auto":
        return tuple(kind for kind in AUGMENTATION_KINDS if kind in requested)
    if name in DIGIT_DATASETS or name.endswith(".npz"):
        return ("rotation", "translation", "zoom")
    if name in UPRIGHT_DATASETS:
        return ("horizontal", "rotation", "translation", "zoom")
    return AUGMENTATION_KINDS


def class_counts(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Images per class index."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels, minlength=num_classes or int(labels.max()) + 1)


def is_unbalanced(labels: np.ndarray) -> bool:
    """Largest over smallest (present) class count above UNBALANCED_RATIO."""
    counts = class_counts(labels)
    counts = counts[counts > 0]
    return bool(counts.max() / counts.min() > UNBALANCED_RATIO)
