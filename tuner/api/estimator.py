"""`CNNClassifier`: the tuner as a scikit-learn estimator, so it drops into scikit-learn code.

`fit(X, y)` tunes a CNN for the images X within `budget` (or for `trials`
trials) and keeps the best model; `predict`, `predict_proba` and `score`
use it. Labels may be any values (they are encoded and decoded); X may be
flat rows of square images (scikit-learn's digits: 64 values -> 8x8).
Each fit works in a temporary folder of its own (a study in SQLite, the
exported model) unless `storage` is given, so `clone` and
`cross_val_score` fit independent copies.
"""

from __future__ import annotations

import math
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from tuner.api.tune import TuneResult, tune
from tuner.core.errors import TunerError


def as_images(x: Any, image_shape: tuple[int, ...] | None) -> np.ndarray:
    """X as (N, H, W) or (N, H, W, C): flat rows are reshaped to `image_shape`, or to a square when they make one."""
    array = np.asarray(x)
    if array.ndim != 2:
        return array
    if image_shape is not None:
        return array.reshape((len(array), *image_shape))
    side = math.isqrt(array.shape[1])
    if side * side != array.shape[1]:
        raise TunerError(f"rows of {array.shape[1]} values are not square images; give image_shape=(height, width)")
    return array.reshape(len(array), side, side)


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """A tuned Keras CNN image classifier (see the module's docstring); every parameter is a study setting.

    `model`, when given, is a define-by-run model function of your own that replaces `space`.
    """

    def __init__(
        self,
        budget: float | str | None = "5m",
        trials: int | None = None,
        space: str = "cnn_cpu",
        model: Callable[..., Any] | None = None,
        folds: int = 3,
        epochs: int | None = None,
        seed: int = 42,
        image_shape: tuple[int, ...] | None = None,
        storage: str | None = None,
        progress: bool = False,
    ):
        self.budget, self.trials, self.space, self.folds, self.epochs = budget, trials, space, folds, epochs
        self.model = model
        self.seed, self.image_shape, self.storage, self.progress = seed, image_shape, storage, progress

    def fit(self, X: Any, y: Any) -> CNNClassifier:
        """Tune on X, y; the best model is kept in `result_`."""
        self.classes_, encoded = np.unique(np.asarray(y), return_inverse=True)
        budget = None if self.trials is not None else self.budget
        settings: dict[str, Any] = {"folds": self.folds, "seed": self.seed, "epochs": self.epochs}
        folder = Path(tempfile.mkdtemp(prefix="tuner-fit-"))
        storage = self.storage or f"sqlite:///{folder / 'tuner.db'}"
        self.result_: TuneResult = tune(
            (as_images(X, self.image_shape), encoded),
            budget=budget,
            trials=self.trials,
            space=None if self.model is not None else self.space,
            model=self.model,
            storage=storage,
            study_name=f"fit-{uuid.uuid4().hex[:12]}",
            out=folder / "exports",
            progress=self.progress,
            class_names=[str(c) for c in self.classes_],
            **settings,
        )
        self.result_.model  # noqa: B018 (load it now: the folder's files need not outlive the fit)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of `classes_`."""
        return self.result_.predict_proba(as_images(X, self.image_shape))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each image, as the labels `fit` was given."""
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])
