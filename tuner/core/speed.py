"""How long training takes on this machine: a small cost model, calibrated once per run and corrected as trials finish.

Training time per image grows with the model's multiply-adds, and every
batch costs a fixed overhead (Python, the framework's step), so

    seconds per training image = per_image + per_multiply_add * MACs + per_step / batch_size

Validation costs `eval_factor` times a training image (forward only, large
batches), and each new model pays `trace_seconds` once (graph tracing, XLA
compilation). `tuner.training.calibration` measures these on probe models;
`corrected` scales the model by what finished trials actually took, so a
machine that runs 2x faster today is planned as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tuner.core.spec import TrialSpec


@dataclass(frozen=True)
class SpeedModel:
    """Seconds of training and validation per image for a spec, on this machine and backend."""

    per_image: float  # seconds per training image that do not depend on the model's size
    per_multiply_add: float  # seconds per multiply-add per training image
    per_step: float  # seconds per training batch, whatever its size
    eval_factor: float  # validation seconds per image / training seconds per image
    trace_seconds: float  # one-off cost of each new model
    correction: float = 1.0  # measured / predicted, from finished trials (1.0 before any)

    def train_seconds_per_image(self, spec: TrialSpec, corrected: bool = True) -> float:
        """Predicted training seconds per image for `spec` (its batch size and multiply-adds)."""
        raw = self.per_image + self.per_multiply_add * spec.model.multiply_adds() + self.per_step / spec.train.batch_size
        return max(raw, 1e-7) * (self.correction if corrected else 1.0)

    def fit_seconds(self, spec: TrialSpec, images: int, epochs: int, validation_images: int = 0) -> float:
        """Predicted wall seconds of training `images` for `epochs` epochs and validating once, tracing included."""
        per_image = self.train_seconds_per_image(spec)
        return self.trace_seconds + images * epochs * per_image + validation_images * per_image * self.eval_factor

    def corrected(self, predicted: Sequence[float], measured: Sequence[float]) -> SpeedModel:
        """The model scaled by the median of measured / predicted seconds per image (`corrected=False` predictions)."""
        ratios = sorted(m / p for p, m in zip(predicted, measured, strict=True) if p > 0 and m > 0 and math.isfinite(m))
        if not ratios:
            return self
        middle = len(ratios) // 2
        median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
        return replace(self, correction=median)
