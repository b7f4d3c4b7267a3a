"""The search-strategy seam: what the run pipeline (tuner.run) asks of a way of searching.

Every way of running a study goes through one pipeline: prepare, open the
study, `begin` (the strategy's own set-up, e.g. calibrating and planning),
the trial loop (`next_job` then the strategy judges the trial), the final
training and export, `finish`. What differs between a trial count and a
wall-clock budget lives behind this protocol, so a new strategy (portfolio
only, DEHB, ...) is one new module, not edits across the packages.
Implementations: tuner.search.count (a trial count with Optuna's pruners)
and tuner.budget (a wall-clock budget).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial

from tuner.search.study import Prepared

STRATEGY_ATTR = "strategy"  # the study user attribute that names the strategy that searches it


def searched_by(study: optuna.Study) -> str | None:
    """The name of the strategy that searched `study` (None: nothing yet), so no other continues it."""
    name = study.user_attrs.get(STRATEGY_ATTR)
    if name:
        return str(name)
    if "budget_plan" in study.user_attrs:  # a study made before strategies were recorded, with a budget's plan
        return "time budget"
    return "trial count" if study.get_trials(deepcopy=False) else None


class Job(enum.Enum):
    """What the trial loop does next."""

    RUN = "run"  # ask for a trial: enqueued by the strategy, or left to the sampler
    WAIT = "wait"  # every slot is taken by trials running elsewhere: look again soon
    DONE = "done"  # nothing more to run


class Display(Protocol):
    """Where a run's progress goes: a line above a bar, the running best, the phase."""

    def line(self, text: str) -> None: ...

    def best(self, text: str) -> None: ...

    @property
    def shows_best(self) -> bool:
        """Whether `best` shows anything (a bar's postfix): the running best costs a storage read per trial."""
        ...

    def phase(self, name: str) -> None: ...

    def trial_done(self) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass
class Finals:
    """What the final training and export wrote: exported models, the ensemble, plots not drawn."""

    models: list[Any] = field(default_factory=list)
    ensemble: Any = None
    skipped_plots: dict[str, str] = field(default_factory=dict)
    out: Path | None = None


class SearchStrategy(Protocol):
    """One way of searching a study (see the module's docstring)."""

    name: str  # "trial count", "time budget": stored on the study, shown in messages
    prepared: Prepared  # the data, the space and the objective it judges with

    def pruner(self) -> optuna.pruners.BasePruner:
        """The pruner the study opens with."""
        ...

    def check_resumable(self, study: optuna.Study) -> None:
        """Raise TunerError when `study` was searched on other terms and cannot be continued by this strategy."""
        ...

    def display(self, enabled: bool) -> Display:
        """The progress display of a run in this process."""
        ...

    def begin(self, study: optuna.Study, display: Display) -> None:
        """The run's own set-up, once, before any trial (not in a joining worker)."""
        ...

    def join(self, study: optuna.Study, requested_trials: int | None) -> None:
        """Every process's set-up under the study lock: what it needs from the study to run trials."""
        ...

    def next_job(self, study: optuna.Study) -> Job:
        """Run a trial (enqueued, or left to the sampler), wait, or stop; called under the study lock."""
        ...

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        """Judge one trial: its value (or values)."""
        ...

    def label(self, trial: FrozenTrial) -> str:
        """What a trial's line shows before its state (e.g. "rung 1")."""
        ...

    def final_training(self, study: optuna.Study, display: Display, storage_url: str | None, out: Path) -> Finals | None:
        """Train, test and export the final models into `out` (None when the study exports none)."""
        ...

    def done_line(self, study: optuna.Study) -> str:
        """What a worker says when the strategy has no more trials for it."""
        ...

    def finish(self, study: optuna.Study, finals: Finals | None) -> list[str]:
        """Lines that close the run (and what the study keeps of it); `finals` is None when interrupted."""
        ...
