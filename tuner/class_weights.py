"""Class weights for unbalanced data, as seed 004 computed them.

Formula 1 ("max_over_count"): the largest class count / the class count, so
the largest class weighs 1 and rarer classes more. Formula 2
("total_over_classes"): total / (classes x class count), so a balanced set
weighs 1 everywhere and the mean weight per image is 1.
"""

from __future__ import annotations

import numpy as np

from tuner.errors import TunerError

FORMULAS = ("none", "max_over_count", "total_over_classes")
UNBALANCED_RATIO = 1.2  # largest / smallest class count above which the space tunes class weights


def class_counts(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels, minlength=num_classes or int(labels.max()) + 1)


def class_weights(labels: np.ndarray, formula: str, num_classes: int | None = None) -> dict[int, float] | None:
    """`{class index: weight}` for Keras' `fit(class_weight=...)`, or None for "none"."""
    if formula not in FORMULAS:
        raise TunerError(f"unknown class weight formula {formula!r}; choose one of {', '.join(FORMULAS)}")
    if formula == "none":
        return None
    counts = class_counts(labels, num_classes).astype(float)
    present = counts > 0
    weights = np.zeros_like(counts)
    if formula == "max_over_count":
        weights[present] = counts.max() / counts[present]
    else:
        weights[present] = counts.sum() / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def is_unbalanced(labels: np.ndarray) -> bool:
    counts = class_counts(labels)
    counts = counts[counts > 0]
    return counts.max() / counts.min() > UNBALANCED_RATIO
