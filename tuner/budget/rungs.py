"""Asynchronous successive halving (ASHA) over a budget plan's rungs: which configuration to judge again, one rung up.

Each trial of a budget study judges one configuration at one rung (user
attributes `rung` and `config`, the number of the configuration's rung-0
trial). Whenever a rung holds n judged configurations, its best n // eta may
be judged one rung up; the promotion goes to the highest rung that has one,
as in Li et al.'s ASHA, so the top rung fills early, and new configurations
are sampled only when no promotion is due. A configuration that is running,
waiting or done one rung up counts as promoted, so two workers under the
study lock never promote the same one twice.

"Best" is what the configuration should reach on the whole training split,
not on the rung's few images: rungs grow by data, and small data favours
small, unregularised models that larger data leaves behind (seed 000's
one-convolution model led an hour's rung 0 by 4 points over a batch-norm
stack that gains twice as much from each tripling of the data). Error falls
as a power of the training images (Hestness et al., 2017), so a
configuration judged at two rungs is ranked by its error extrapolated along
the power law through those two points (`predicted_accuracy`); at rung 0,
with one point, by its value. Since one point cannot show a curve, the
space's portfolio starts (its known-good configurations) are always judged
at rung 1 too, beside rung 0's best third.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from tuner.budget.plan import DEFAULT_POLICY
from tuner.core.record import TrialRecord

MAX_SCALING_EXPONENT = 0.35  # error ~ images^-a; Hestness et al. 2017 measured a from 0.07 to 0.35 across domains


@dataclass(frozen=True)
class Promotion:
    """Judge the configuration of trial `source` again, at rung `rung`."""

    source: int  # the trial number of its judgement one rung down
    configuration: int  # its rung-0 trial
    rung: int
    params: dict[str, Any]
    baseline: str | None
    value: float  # at the rung below
    portfolio: str | None = None


def configuration_of(trial: FrozenTrial) -> int:
    """The configuration a trial judges: its rung-0 trial's number."""
    stored = TrialRecord.of(trial).configuration
    return trial.number if stored is None else stored


def extrapolate(value: float, images: int, lower_value: float, lower_images: int, full_images: int) -> float:
    """The accuracy at `full_images` on the power law through (lower_images, lower_value) and (images, value).

    Error = c * images^-a, with a clamped to [0, MAX_SCALING_EXPONENT]; `value` when the points show no curve.
    """
    error, lower_error = 1.0 - value, 1.0 - lower_value
    if not images or not lower_images or images <= lower_images or error <= 0 or lower_error <= 0:
        return value
    exponent = math.log(lower_error / error) / math.log(images / lower_images)
    exponent = min(MAX_SCALING_EXPONENT, max(0.0, exponent))
    return 1.0 - error * (max(full_images, images) / images) ** -exponent


def predicted_for(trial: FrozenTrial, lower: FrozenTrial | None, full_images: int) -> float:
    """`trial`'s accuracy predicted for `full_images`, through its configuration's judgement one rung `lower`."""
    value = float(trial.values[0])
    if lower is None:
        return value
    return extrapolate(
        value,
        int(TrialRecord.of(trial).fidelity.get("images") or 0),
        float(lower.values[0]),
        int(TrialRecord.of(lower).fidelity.get("images") or 0),
        full_images,
    )


def predicted_accuracy(trials: Sequence[FrozenTrial], full_images: int) -> dict[int, float]:
    """Each judged trial's accuracy predicted for `full_images` training images, by trial number.

    A trial whose configuration was also judged one rung lower extrapolates
    the power law through the two (error = c * images^-a, a clamped to
    [0, MAX_SCALING_EXPONENT]); any other keeps its value.
    """
    judged = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    at: Mapping[tuple[int, int], FrozenTrial] = {(configuration_of(t), TrialRecord.of(t).rung): t for t in judged}
    predicted = {}
    for trial in judged:
        rung = TrialRecord.of(trial).rung
        lower = at.get((configuration_of(trial), rung - 1)) if rung > 0 else None
        predicted[trial.number] = predicted_for(trial, lower, full_images)
    return predicted


def promotions(
    trials: Sequence[FrozenTrial], rungs: int, eta: int = DEFAULT_POLICY.eta, full_images: int | None = None
) -> list[Promotion]:
    """Every promotion due now, the highest rung first, best first within a rung.

    Best by `predicted_accuracy` for `full_images` training images, or by value when that is None.
    """
    score = predicted_accuracy(trials, full_images) if full_images else {}
    judged: dict[int, list[FrozenTrial]] = defaultdict(list)
    taken: dict[int, set[int]] = defaultdict(set)  # configurations started at each rung
    for trial in trials:
        rung = TrialRecord.of(trial).rung
        if trial.state == TrialState.COMPLETE:
            judged[rung].append(trial)
        if trial.state != TrialState.FAIL:
            taken[rung].add(configuration_of(trial))
    due = []
    for rung in range(rungs - 2, -1, -1):
        ranked = sorted(judged[rung], key=lambda t: (-score.get(t.number, t.values[0]), t.number))
        chosen = ranked[: len(ranked) // eta]
        if rung == 0:  # a portfolio start is judged at two rungs whatever its first score: its curve is then known
            starts = [t for t in ranked if TrialRecord.of(t).portfolio]
            chosen = starts + [t for t in chosen if t not in starts]
        for trial in chosen:
            if configuration_of(trial) not in taken[rung + 1]:
                due.append(
                    Promotion(
                        trial.number,
                        configuration_of(trial),
                        rung + 1,
                        dict(trial.params),
                        TrialRecord.of(trial).baseline,
                        trial.values[0],
                        TrialRecord.of(trial).portfolio,
                    )
                )
    return due
