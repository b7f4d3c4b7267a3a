"""What a trial stores: one schema over Optuna's user attributes, with typed accessors.

Trials keep everything the tuner knows of them in user attributes (JSON
values under string keys), which the dashboard shows as they are. The keys
are named here once: the objective and workers write through these names,
and summary, ranking, export and the card read through `TrialRecord`.
A trial made by an older version (no `spec`, say) reads as `None` there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tuner.core.spec import TrialSpec

# Keys of the user attributes (CVFigures' field names are keys too).
BASELINE = "baseline"  # the name of a hand-made seed model
PORTFOLIO = "portfolio"  # the name of one of the space's known-good starts (budget studies)
STOPPED = "stopped"  # why a trial ended early: pruned at fold F, epoch E / rejected: ... / interrupted by the user
SEED = "seed"  # the seed of weights and shuffling
BACKEND = "backend"  # the Keras backend that trained it
DEVICE = "device"  # what it trained on: gpu, tpu or cpu
PRECISION = "precision"  # the Keras dtype policy it trained under: float32 or mixed_bfloat16
DETERMINISTIC = "deterministic"  # whether it trained with deterministic ops (--deterministic): reproducible values
WORKER = "worker"  # who ran it: host:pid or $TUNER_WORKER_ID
FEASIBLE = "feasible"  # False when it broke a constraint (--max-gap)
CURVE = "val_accuracy_curve"  # two-objective studies: {"step": accuracy}, for curve pruning
SPEC = "spec"  # the TrialSpec as a dict: export and predict rebuild the model from it
RUNG = "rung"  # budget studies: the fidelity rung this trial was judged at (0 = cheapest)
FIDELITY = "fidelity"  # budget studies: {"images": N, "epochs": E} of that rung
PROMOTED_FROM = "promoted_from"  # budget studies: the trial whose configuration this one judges again
CONFIGURATION = "config"  # budget studies: the number of the rung-0 trial that first judged this configuration
PREDICTED = "predicted_accuracy"  # budget studies: the accuracy the trial's learning curve predicts for the whole split
TRAIN_SECONDS_PER_IMAGE = "train_seconds_per_image"  # training only (no validation, no tracing)


class HasUserAttrs(Protocol):
    """An Optuna trial, frozen or running."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CVFigures:
    """What the K-fold harness measured for one trial, stored flat as user attributes."""

    val_accuracy_mean: float
    val_accuracy_std: float
    val_loss_mean: float
    val_loss_std: float
    train_accuracy_mean: float
    train_accuracy_std: float
    train_loss_mean: float
    train_loss_std: float
    n_folds: int
    overfit_gap: float  # mean over folds of val loss - train loss
    best_epochs: list[int]  # 1-based epoch of the highest val accuracy, per fold
    fold_val_accuracy: list[float]
    trainable_params: int
    seconds: float  # the whole trial
    seconds_per_fold: float
    seconds_per_image: float  # fold seconds per training image seen, validation and tracing included
    cv_history: dict[str, list[float]]  # per-epoch means over folds: accuracy, val_accuracy, loss, val_loss
    start: str = "random"  # "random" or "pretrained:FOLDER (fine-tuned|frozen)"
    latency_ms: float | None = None  # batch-1 inference milliseconds of the trained model (objective latency)

    def attrs(self) -> dict[str, Any]:
        """The figures as user attributes."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> CVFigures | None:
        """The figures a trial stored, or None if it never finished its folds."""
        names = [f.name for f in dataclasses.fields(cls)]
        if "val_accuracy_mean" not in attrs:
            return None
        defaults: dict[str, Any] = {
            "train_accuracy_std": 0.0,
            "train_loss_std": 0.0,
            "fold_val_accuracy": [],
            "seconds_per_fold": 0.0,
            "seconds_per_image": 0.0,
            "cv_history": {},
            "best_epochs": [],
            "val_loss_std": 0.0,
            "trainable_params": 0,
            "seconds": 0.0,
            "overfit_gap": float("nan"),
            "val_loss_mean": float("nan"),
            "train_loss_mean": float("nan"),
            "train_accuracy_mean": float("nan"),
            "val_accuracy_std": 0.0,
            "n_folds": 0,
        }
        return cls(**{name: attrs.get(name, defaults.get(name)) for name in names})


class TrialRecord:
    """Typed read access to a trial's user attributes."""

    def __init__(self, attrs: Mapping[str, Any]):
        self.attrs = attrs

    @classmethod
    def of(cls, trial: HasUserAttrs) -> TrialRecord:
        """The record of an Optuna trial (frozen or running)."""
        return cls(trial.user_attrs)

    @property
    def cv(self) -> CVFigures | None:
        """The harness' figures, or None for a trial stopped before its last fold."""
        return CVFigures.from_attrs(self.attrs)

    @property
    def accuracy(self) -> float | None:
        """Mean validation accuracy over the folds, if the trial got that far."""
        value = self.attrs.get("val_accuracy_mean")
        return None if value is None else float(value)

    @property
    def baseline(self) -> str | None:
        return self.attrs.get(BASELINE)

    @property
    def portfolio(self) -> str | None:
        return self.attrs.get(PORTFOLIO)

    @property
    def stopped(self) -> str | None:
        return self.attrs.get(STOPPED)

    @property
    def seed(self) -> int | None:
        value = self.attrs.get(SEED)
        return None if value is None else int(value)

    @property
    def worker(self) -> str | None:
        return self.attrs.get(WORKER)

    @property
    def feasible(self) -> bool:
        """False only when the trial broke a constraint of its study."""
        return self.attrs.get(FEASIBLE, True) is not False

    @property
    def curve(self) -> dict[int, float]:
        """The accuracy curve by global step (two-objective studies)."""
        return {int(step): float(value) for step, value in self.attrs.get(CURVE, {}).items()}

    @property
    def spec(self) -> TrialSpec | None:
        """The stored spec, or None for trials made before specs were stored."""
        data = self.attrs.get(SPEC)
        return None if data is None else TrialSpec.from_dict(data)

    @property
    def rung(self) -> int:
        """The fidelity rung of a budget study's trial (0 for every other trial)."""
        return int(self.attrs.get(RUNG, 0))

    @property
    def configuration(self) -> int | None:
        """The rung-0 trial of this configuration (budget studies)."""
        value = self.attrs.get(CONFIGURATION)
        return None if value is None else int(value)

    @property
    def predicted(self) -> float | None:
        """The accuracy predicted for the whole training split, where the strategy extrapolates (budget studies)."""
        value = self.attrs.get(PREDICTED)
        return None if value is None else float(value)

    @property
    def fidelity(self) -> dict[str, Any]:
        """What a budget study's trial trained on: {"images", "epochs", "validation_images"} (empty elsewhere)."""
        return dict(self.attrs.get(FIDELITY) or {})

    @property
    def train_seconds_per_image(self) -> float | None:
        value = self.attrs.get(TRAIN_SECONDS_PER_IMAGE)
        return None if value is None else float(value)

    def label(self, number: int) -> str:
        """ "trial 3", "trial 3 (seed000-v1)" or "trial 3 (start-vgg-32-64)"."""
        name = self.baseline or self.portfolio
        return f"trial {number} ({name})" if name else f"trial {number}"
