"""A short calibration of this machine's training speed: three probe trainings fit a SpeedModel.

Each probe trains two epochs on a slice of the real data: the first pays for
tracing, the second is timed for training alone (tuner.training.timing), and
a prediction on the same slice times validation. A small model at batch 32
and 256 separates the per-batch overhead from the per-image cost; a larger
model gives the cost per multiply-add. On Fashion-MNIST on a 2-core CPU the
whole calibration takes about 15 seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.core.speed import SpeedModel
from tuner.data.dataset import DataSet
from tuner.data.streaming import is_streamed
from tuner.training.train_once import train_once

SMALL_IMAGES = 2048
LARGE_IMAGES = 1024
EVAL_BATCH = 256


@dataclass(frozen=True)
class Probe:
    """One timed probe training."""

    name: str
    spec: TrialSpec
    train_seconds_per_image: float
    eval_seconds_per_image: float
    trace_seconds: float


def probe_specs(input_shape: tuple[int, int, int], num_classes: int) -> dict[str, TrialSpec]:
    """The probes: seed 000's v1 shape at batch 32 and 256, and a 2-block batch-norm CNN at batch 128."""
    small = ModelSpec(input_shape, num_classes, (ConvBlock(32, 3),), padding="same", dense_units=(100,))
    large = ModelSpec(
        input_shape,
        num_classes,
        (ConvBlock(32, 3, convs=2), ConvBlock(64, 3, convs=2)),
        padding="same",
        batch_norm=True,
        dense_units=(256,),
    )
    return {
        "small@32": TrialSpec(small, TrainSpec(optimizer="adam", batch_size=32, epochs=2)),
        "small@256": TrialSpec(small, TrainSpec(optimizer="adam", batch_size=256, epochs=2)),
        "large@128": TrialSpec(large, TrainSpec(optimizer="adam", batch_size=128, epochs=2)),
    }


def _probe(name: str, spec: TrialSpec, x: np.ndarray, y: np.ndarray) -> Probe:
    trained = train_once(spec, x, y, seed=0)
    steady = trained.train_epoch_seconds or trained.seconds / spec.train.epochs
    trace = max(0.0, trained.seconds - steady * spec.train.epochs)
    trained.model.predict(x[:EVAL_BATCH], batch_size=EVAL_BATCH, verbose=0)  # traces the prediction step
    evaluating = time.perf_counter()
    trained.model.predict(x, batch_size=EVAL_BATCH, verbose=0)
    eval_seconds = time.perf_counter() - evaluating
    return Probe(name, spec, steady / len(y), eval_seconds / len(y), trace)


def calibrate(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[SpeedModel, list[Probe]]:
    """Time the probes on slices of (x, y) and fit the SpeedModel; returns it and the probes' figures."""
    input_shape = tuple(int(side) for side in x.shape[1:])
    specs = probe_specs((input_shape[0], input_shape[1], input_shape[2]), num_classes)
    probes = [
        _probe(
            name,
            spec,
            x[: (LARGE_IMAGES if name.startswith("large") else SMALL_IMAGES)],
            y[: (LARGE_IMAGES if name.startswith("large") else SMALL_IMAGES)],
        )
        for name, spec in specs.items()
    ]
    return fit_speed_model(probes), probes


def calibrate_dataset(dataset: DataSet) -> tuple[SpeedModel, list[Probe]]:
    """`calibrate` on the first images of `dataset` (read from disk for a streamed folder)."""
    count = min(SMALL_IMAGES, len(dataset.y_train))
    x = dataset.x_train.read(np.arange(count)) if is_streamed(dataset.x_train) else dataset.x_train[:count]
    return calibrate(x, dataset.y_train[:count], dataset.num_classes)


def fit_speed_model(probes: list[Probe]) -> SpeedModel:
    """Solve per_step from the two small probes, per_multiply_add from the large one; never negative."""
    by_name = {probe.name: probe for probe in probes}
    small32, small256, large = by_name["small@32"], by_name["small@256"], by_name["large@128"]
    per_step = max(0.0, (small32.train_seconds_per_image - small256.train_seconds_per_image) / (1 / 32 - 1 / 256))
    small_work, large_work = small256.spec.model.multiply_adds(), large.spec.model.multiply_adds()
    small_rest = small256.train_seconds_per_image - per_step / 256
    large_rest = large.train_seconds_per_image - per_step / 128
    per_multiply_add = max(0.0, (large_rest - small_rest) / (large_work - small_work))
    per_image = max(0.0, small_rest - per_multiply_add * small_work)
    eval_factor = float(np.median([p.eval_seconds_per_image / p.train_seconds_per_image for p in probes]))
    trace = max(p.trace_seconds for p in probes)
    return SpeedModel(per_image, per_multiply_add, per_step, eval_factor, trace)
