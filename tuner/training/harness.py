"""Iterated, shuffled, stratified K-fold training of one TrialSpec.

The harness trains and reports; it knows nothing of Optuna, samplers or
storage. After each epoch it calls `reporter(step, value)` with one global
step across folds (`fold_number * max_epochs + epoch`), so that a pruner sees
every fold's curve at distinct steps and step // max_epochs reads as the
fold. A reporter stops the trial by raising.

The model is built and compiled once per trial; each fold starts from the same
initial weights and a fresh optimizer state, which gives every fold a fresh
model without paying graph tracing or XLA compilation per fold.

A budget study judges cheap fidelities first: `max_folds=1` trains one fold
(a fixed hold-out), `train_size` and `validation_size` use stratified parts
of the fold's training and validation images, and `validate_last_only`
validates once, after the last epoch, instead of after every epoch.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.core import interrupt
from tuner.core.record import CVFigures
from tuner.core.spec import TrialSpec
from tuner.data.streaming import is_streamed
from tuner.training import feeding, models, pretrained
from tuner.training.batches import fold_batches
from tuner.training.class_weights import class_weights
from tuner.training.compilation import enable_compilation_cache
from tuner.training.latency import batch1_latency_ms
from tuner.training.precision import FLOAT32
from tuner.training.session import release_memory, snapshot
from tuner.training.timing import training_clock

Reporter = Callable[[int, float], None]

# Validation runs every epoch (the pruner needs it) but needs no gradients, so it
# runs at no less than this batch size: fewer Python steps per epoch, same figures
# (dropout is off and batch norm uses its moving averages at inference).
VALIDATION_BATCH_SIZE = 256


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, fold: int, epoch: int):
        super().__init__(f"training loss became NaN or infinite at fold {fold}, epoch {epoch}")
        self.fold, self.epoch = fold, epoch


@dataclass
class FoldResult:
    """One fold's final figures and curves."""

    val_accuracy: float
    val_loss: float
    train_accuracy: float
    train_loss: float
    best_epoch: int  # 1-based epoch of the highest validation accuracy
    epochs_run: int
    seconds: float
    train_images: int = 0  # images in the fold's training part (one epoch's worth)
    train_epoch_seconds: float | None = None  # training part of a steady epoch (no validation, no tracing)
    history: dict[str, list[float]] = field(repr=False, default_factory=dict)


@dataclass
class CVResult:
    """Every fold of one trial, and what the trial cost."""

    folds: list[FoldResult]
    trainable_params: int
    seconds: float
    start: str = "random"  # how the weights started: "random" or "pretrained:FOLDER (...)"
    latency_ms: float | None = None  # batch-1 inference of the last fold's model (measure_latency), else None

    def _stat(self, name: str) -> tuple[float, float]:
        values = np.array([getattr(f, name) for f in self.folds], dtype=float)
        return float(values.mean()), float(values.std())

    @property
    def mean_val_accuracy(self) -> float:
        return self._stat("val_accuracy")[0]

    @property
    def mean_gap(self) -> float:
        """Overfitting: mean over folds of validation loss minus training loss."""
        return float(np.mean([f.val_loss - f.train_loss for f in self.folds]))

    @property
    def seconds_per_fold(self) -> float:
        return float(np.mean([f.seconds for f in self.folds]))

    @property
    def seconds_per_image(self) -> float:
        """Fold seconds per training image seen, validation and tracing included."""
        seen = sum(f.epochs_run * f.train_images for f in self.folds)
        return float(sum(f.seconds for f in self.folds) / seen) if seen else 0.0

    @property
    def train_seconds_per_image(self) -> float | None:
        """Training-only seconds per image of a steady epoch, the mean over folds (what budgets plan with)."""
        rates = [f.train_epoch_seconds / f.train_images for f in self.folds if f.train_epoch_seconds and f.train_images]
        return float(np.mean(rates)) if rates else None

    def figures(self) -> CVFigures:
        """The figures a trial stores (tuner.core.record)."""
        stats = {
            f"{name}_{kind}": value
            for name in ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
            for kind, value in zip(("mean", "std"), self._stat(name))
        }
        return CVFigures(
            **stats,
            n_folds=len(self.folds),
            overfit_gap=self.mean_gap,
            best_epochs=[f.best_epoch for f in self.folds],
            fold_val_accuracy=[f.val_accuracy for f in self.folds],
            trainable_params=self.trainable_params,
            seconds=self.seconds,
            seconds_per_fold=self.seconds_per_fold,
            seconds_per_image=self.seconds_per_image,
            cv_history=self.mean_history(),
            start=self.start,
            latency_ms=self.latency_ms,
        )

    def mean_history(self) -> dict[str, list[float]]:
        """Per-epoch means over the folds that reached each epoch (learning curves in model cards)."""
        curves: dict[str, list[float]] = {}
        for key in ("accuracy", "val_accuracy", "loss", "val_loss"):
            runs = [f.history.get(key, []) for f in self.folds]
            longest = max((len(r) for r in runs), default=0)
            curves[key] = [float(np.mean([r[e] for r in runs if len(r) > e])) for e in range(longest)]
        return curves


@functools.lru_cache(maxsize=8)
def _splits(labels_key: bytes, n_splits: int, n_repeats: int, seed: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from sklearn.model_selection import RepeatedStratifiedKFold

    labels = np.frombuffer(labels_key, dtype=np.int32)
    splitter = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    return tuple(splitter.split(np.zeros(len(labels)), labels))


def fold_indices(labels: np.ndarray, folds: int, repeats: int, seed: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, validation) index pairs, computed once per process for given labels."""
    return _splits(np.ascontiguousarray(labels, dtype=np.int32).tobytes(), folds, repeats, seed)


def stratified_part(indices: np.ndarray, labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """`size` of `indices`, with the classes in proportion (all of them when size is None or leaves too few out)."""
    if not size or size > len(indices) - len(np.unique(labels[indices])):
        return indices
    from sklearn.model_selection import train_test_split

    part, _ = train_test_split(indices, train_size=size, stratify=labels[indices], random_state=seed)
    return np.sort(part)


def _epoch_reporter(fold: int, max_epochs: int, reporter: Reporter | None) -> Any:
    """A Keras callback that stops on a non-finite loss and forwards each epoch's validation accuracy."""
    import keras

    class EpochReporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()  # a Ctrl-C the garbage collector swallowed stops the trial here
            logs = logs or {}
            if not math.isfinite(float(logs.get("loss", 0.0))):
                raise NonFiniteLoss(fold, epoch + 1)
            if reporter is not None and "val_accuracy" in logs:
                reporter(fold * max_epochs + epoch, float(logs["val_accuracy"]))

    return EpochReporter()


def cross_validate(
    spec: TrialSpec,
    x: Any,
    y: np.ndarray,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    split_seed: int | None = None,
    max_epochs: int | None = None,
    reporter: Reporter | None = None,
    early_stopping_patience: int = 0,
    verbose: int = 0,
    max_folds: int | None = None,
    train_size: int | None = None,
    validation_size: int | None = None,
    validate_last_only: bool = False,
    precision: str = FLOAT32,
    measure_latency: bool = False,
) -> CVResult:
    """Train `spec` on each fold of (x, y) and return per-fold figures.

    `split_seed` fixes the folds (the same for every trial of a study, so that
    trials are compared on the same splits); `seed` fixes weights and shuffling.
    `max_folds` trains only the first folds, `train_size` only part of each
    fold's training images, `validation_size` validates on part of each
    fold's validation images, and `validate_last_only` validates once per fold.
    `precision` is the Keras dtype policy (tuner.training.precision).
    `measure_latency` times the last fold's trained model on one image (tuner.training.latency).
    Raises NonFiniteLoss when training diverges, and whatever `reporter` raises.
    """
    import keras

    max_epochs = max_epochs or spec.train.epochs
    split_seed = seed if split_seed is None else split_seed
    started = time.perf_counter()
    enable_compilation_cache()
    release_memory()  # Keras state of models built outside the harness
    memory_at_start = snapshot()
    model: Any = None
    callbacks: list[Any] = []
    try:
        keras.utils.set_random_seed(seed)
        model = models.build_model(spec.model, precision)
        start = "random"
        if spec.model.pretrained:  # before compiling, so that frozen layers stay frozen
            start = pretrained.start_from(model, spec.model.pretrained, spec.model.freeze_pretrained)
        n_train = train_size or len(y) - len(y) // folds
        models.compile_model(model, spec.train, n_train)
        model.optimizer.build(model.trainable_variables)
        initial_weights = model.get_weights()
        initial_optimizer = [v.numpy() for v in model.optimizer.variables]

        results = []
        for fold_number, (all_train_idx, all_val_idx) in enumerate(fold_indices(y, folds, repeats, split_seed)[:max_folds]):
            train_idx = stratified_part(all_train_idx, y, train_size, split_seed)
            val_idx = stratified_part(all_val_idx, y, validation_size, split_seed)
            if fold_number:
                model.set_weights(initial_weights)
                for variable, value in zip(model.optimizer.variables, initial_optimizer):
                    variable.assign(value)
            clock = training_clock()
            callbacks = [_epoch_reporter(fold_number, max_epochs, reporter), clock, *models.schedule_callbacks(spec.train)]
            if early_stopping_patience:
                callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping_patience))
            data: dict[str, Any]
            if is_streamed(x):  # an image folder read from disk per batch
                data = dict(
                    x=fold_batches(x, y, train_idx, spec.train.batch_size, shuffle=True, seed=seed + fold_number),
                    validation_data=fold_batches(x, y, val_idx, spec.train.batch_size),
                )
            else:
                data = {
                    **feeding.fit_data(x[train_idx], y[train_idx], spec.train.batch_size, seed=seed + fold_number),
                    **feeding.validation_data(x[val_idx], y[val_idx], max(spec.train.batch_size, VALIDATION_BATCH_SIZE)),
                }
            fold_started = time.perf_counter()
            history = model.fit(
                **data,
                epochs=spec.train.epochs,
                validation_freq=spec.train.epochs if validate_last_only else 1,
                callbacks=callbacks,
                class_weight=class_weights(y[train_idx], spec.train.class_weight, spec.model.num_classes),
                verbose=verbose,
            ).history
            seconds = time.perf_counter() - fold_started
            val_accuracy = history["val_accuracy"]
            results.append(
                FoldResult(
                    val_accuracy=val_accuracy[-1],
                    val_loss=history["val_loss"][-1],
                    train_accuracy=history["accuracy"][-1],
                    train_loss=history["loss"][-1],
                    best_epoch=len(history["loss"]) if validate_last_only else int(np.argmax(val_accuracy)) + 1,
                    epochs_run=len(history["loss"]),
                    seconds=seconds,
                    train_images=len(train_idx),
                    train_epoch_seconds=clock.steady_epoch_seconds(),
                    history={k: [float(v) for v in values] for k, values in history.items() if k != "learning_rate"},
                )
            )
        params = models.trainable_parameters(model)
        latency = batch1_latency_ms(model, np.zeros(spec.model.input_shape, "float32")) if measure_latency else None
    finally:
        model, callbacks = None, []  # the last references, so that release_memory frees the model and its graphs
        release_memory(since=memory_at_start)
    return CVResult(results, params, time.perf_counter() - started, start, latency)
