"""Class weights for unbalanced data, as seed 004 computed them.

Formula 1 ("max_over_count"): the largest class count / the class count, so
the largest class weighs 1 and rarer classes more. Formula 2
("total_over_classes"): total / (classes x class count), so a balanced set
weighs 1 everywhere and the mean weight per image is 1.
"""

from __future__ import annotations

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.spec import CLASS_WEIGHT_FORMULAS
from tuner.data.suitability import class_counts


def class_weights(labels: np.ndarray, formula: str, num_classes: int | None = None) -> dict[int, float] | None:
    """`{class index: weight}` for Keras' `fit(class_weight=...)`, or None for "none"."""
    if formula not in CLASS_WEIGHT_FORMULAS:
        raise TunerError(f"unknown class weight formula {formula!r}; choose one of {', '.join(CLASS_WEIGHT_FORMULAS)}")
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
