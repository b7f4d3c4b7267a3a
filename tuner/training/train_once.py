"""One training of one spec on all the images it is given: what export, pretrain and benchmarks share.

The K-fold harness judges a recipe; `train_once` trains the model that a
person keeps. It builds the model (loading a pretrained start before
compiling, so frozen layers stay frozen), trains with the recipe's schedule
and the trial's seed, and reports what the training cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.core.spec import TrialSpec
from tuner.training import feeding, models, pretrained
from tuner.training.class_weights import class_weights
from tuner.training.compilation import enable_compilation_cache
from tuner.training.precision import FLOAT32
from tuner.training.session import release_memory
from tuner.training.timing import training_clock


@dataclass
class Trained:
    """A trained model and what its training looked like."""

    model: Any
    history: dict[str, list[float]] = field(repr=False)
    seconds: float  # wall seconds of the whole fit, tracing included
    train_epoch_seconds: float | None  # training part of a steady epoch


def train_once(
    spec: TrialSpec,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[Any] = (),
    verbose: int = 0,
    precision: str = FLOAT32,
) -> Trained:
    """Train `spec` on (x, y) for `spec.train.epochs` epochs, seeded; validate on `validation_data` if given.

    `precision` is the Keras dtype policy (tuner.training.precision).
    """
    import keras

    enable_compilation_cache()
    release_memory()
    keras.utils.set_random_seed(seed)
    model = models.build_model(spec.model, precision)
    if spec.model.pretrained:
        pretrained.start_from(model, spec.model.pretrained, spec.model.freeze_pretrained)
    models.compile_model(model, spec.train, len(y))
    clock = training_clock()
    schedule = models.schedule_callbacks(spec.train, monitor="val_loss" if validation_data is not None else "loss")
    started = time.perf_counter()
    checked = max(256, spec.train.batch_size)
    validation = {} if validation_data is None else feeding.validation_data(*validation_data, checked)
    history = model.fit(
        **feeding.fit_data(x, y, spec.train.batch_size, seed=seed),
        **validation,
        epochs=spec.train.epochs,
        callbacks=[clock, *schedule, *callbacks],
        class_weight=class_weights(y, spec.train.class_weight, spec.model.num_classes),
        verbose=verbose,
    ).history
    seconds = time.perf_counter() - started
    curves = {key: [float(v) for v in values] for key, values in history.items() if key != "learning_rate"}
    return Trained(model, curves, seconds, clock.steady_epoch_seconds())
