"""Asynchronous successive halving (ASHA) over a budget plan's rungs: which configuration to judge again, one rung up.

Each trial of a budget study judges one configuration at one rung (user
attributes `rung` and `config`, the number of the configuration's rung-0
trial). Whenever a rung holds n judged configurations, its best n // ETA may
be judged one rung up; the promotion goes to the highest rung that has one,
as in Li et al.'s ASHA, so the top rung fills early, and new configurations
are sampled only when no promotion is due. A configuration that is running,
waiting or done one rung up counts as promoted, so two workers under the
study lock never promote the same one twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from tuner.core.record import TrialRecord
from tuner.search.plan import ETA


@dataclass(frozen=True)
class Promotion:
    """Judge the configuration of trial `source` again, at rung `rung`."""

    source: int  # the trial number of its judgement one rung down
    config: int  # its rung-0 trial
    rung: int
    params: dict[str, Any]
    baseline: str | None
    value: float  # at the rung below
    portfolio: str | None = None


def config_of(trial: FrozenTrial) -> int:
    """The configuration a trial judges: its rung-0 trial's number."""
    stored = TrialRecord.of(trial).config
    return trial.number if stored is None else stored


def promotions(trials: Sequence[FrozenTrial], rungs: int, eta: int = ETA) -> list[Promotion]:
    """Every promotion due now, the highest rung first, best value first within a rung."""
    judged: dict[int, list[FrozenTrial]] = defaultdict(list)
    taken: dict[int, set[int]] = defaultdict(set)  # configurations started at each rung
    for trial in trials:
        rung = TrialRecord.of(trial).rung
        if trial.state == TrialState.COMPLETE:
            judged[rung].append(trial)
        if trial.state != TrialState.FAIL:
            taken[rung].add(config_of(trial))
    due = []
    for rung in range(rungs - 2, -1, -1):
        ranked = sorted(judged[rung], key=lambda t: (-t.values[0], t.number))
        for trial in ranked[: len(ranked) // eta]:
            if config_of(trial) not in taken[rung + 1]:
                due.append(
                    Promotion(
                        trial.number,
                        config_of(trial),
                        rung + 1,
                        dict(trial.params),
                        TrialRecord.of(trial).baseline,
                        trial.values[0],
                        TrialRecord.of(trial).portfolio,
                    )
                )
    return due
