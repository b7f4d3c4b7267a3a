"""The time-budget strategy: `--budget 1h` buys the best model that wall clock can, planned by the tuner.

Within the budget, counted from the command's start to the exported card:
load the data; calibrate this machine's training speed (tuner.training.
calibration); plan the search, the final training and the export
(tuner.budget.plan); search by asynchronous successive halving over data
size, each rung a miniature of the final training (tuner.budget.rung_search),
in this process or in `--workers N` processes that follow the plan stored on
the study; train the winner on the whole training split with a cosine
learning rate fitted to the time left and, while time is left, the next
best for an averaged ensemble (tuner.budget.final_training).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.budget.display import BudgetDisplay
from tuner.budget.final_training import train_finals
from tuner.budget.plan import DEFAULT_POLICY, PLAN_ATTR, SPEED_ATTR, BudgetPlan, PlanPolicy
from tuner.budget.rung_search import BudgetSearch, plan_for
from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.settings import StudyConfig
from tuner.core.speed import SpeedModel
from tuner.search.strategy import Display, Finals, Job, searched_by
from tuner.search.study import Prepared, record_data_notes
from tuner.storage.storages import artifact_store
from tuner.training.calibration import calibrate_dataset

RESULT_ATTR = "budget_result"


def check_config(config: StudyConfig) -> None:
    """A budget plans for accuracy alone."""
    if len(config.objectives) > 1:
        raise TunerError("--budget plans for accuracy alone; leave out --objectives, or --budget to weigh time or size")


class BudgetStrategy:
    """A wall-clock budget (see the module's docstring).

    `started` is the command's start (the budget counts from it); `workers`
    the processes the search runs in; `policy` the plan's constants. A
    joining worker reads the plan (with its policy) the run stored on the
    study.
    """

    name = "time budget"

    def __init__(
        self,
        prepared: Prepared,
        started: float,
        workers: int = 1,
        clock: Callable[[], float] = time.time,
        policy: PlanPolicy = DEFAULT_POLICY,
    ) -> None:
        check_config(prepared.config)
        self.prepared, self.config, self.started, self.workers = prepared, prepared.config, started, workers
        self.clock, self.policy = clock, policy
        self.start_up = clock() - started  # what each worker process will take again before its first trial
        self.search: BudgetSearch | None = None
        self.calibrated: SpeedModel | None = None  # as measured before the search (the search corrects its own copy)
        assert self.config.budget is not None
        self.budget: float = self.config.budget

    def pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()  # the strategy promotes between fidelities itself (tuner.budget.rungs)

    def check_resumable(self, study: optuna.Study) -> None:
        if searched_by(study) not in (None, self.name):
            raise TunerError(
                f"study {study.study_name!r} was run without --budget; its trials are judged on other terms, "
                "so use a new --study-name for a budget run"
            )

    def display(self, enabled: bool) -> Display:
        return BudgetDisplay(self.budget, self.started, enabled)

    def begin(self, study: optuna.Study, display: Display) -> None:
        """Calibrate, plan (a study searched before keeps its fidelities) and store the plan for the workers."""
        display.phase("calibrating")
        speed, probes = calibrate_dataset(self.prepared.dataset)
        for probe in probes:
            display.line(
                f"  {probe.name}: {probe.train_seconds_per_image * 1000:.3f} ms per training image, "
                f"{probe.eval_seconds_per_image * 1000:.3f} per validation image, tracing {probe.trace_seconds:.1f}s"
            )
        ready = self.clock() + (self.start_up if self.workers > 1 else 0.0)  # workers start as this process did
        plan = plan_for(self.prepared, speed, started=self.started, now=ready, workers=self.workers, policy=self.policy)
        stored = study.user_attrs.get(PLAN_ATTR)
        if stored is not None:  # its rungs stay comparable
            kept = BudgetPlan.from_dict(stored)
            plan = dataclasses.replace(plan, rungs=kept.rungs, matched_seconds=kept.matched_seconds)
        study.set_user_attr(PLAN_ATTR, plan.to_dict())
        study.set_user_attr(SPEED_ATTR, dataclasses.asdict(speed))
        record_data_notes(study, self.prepared.dataset)
        self.search = BudgetSearch(self.prepared, plan, speed, self.clock, announce=display.line)
        self.calibrated = speed
        for line in plan.describe(self.search.start_epochs()):
            display.line(line)
        display.phase("search")

    def join(self, study: optuna.Study, requested_trials: int | None) -> None:
        if self.search is not None:
            return
        plan, speed = study.user_attrs.get(PLAN_ATTR), study.user_attrs.get(SPEED_ATTR)
        if plan is None or speed is None:
            raise TunerError(
                f"study {study.study_name!r} has no budget plan; start it with 'tuner run STUDY --budget DURATION "
                "--workers N', whose workers follow the plan it makes"
            )
        self.calibrated = SpeedModel(**speed)
        self.search = BudgetSearch(self.prepared, BudgetPlan.from_dict(plan), self.calibrated, self.clock)

    def _search(self) -> BudgetSearch:
        if self.search is None:
            raise RuntimeError("the budget strategy has no plan yet: begin or join first")
        return self.search

    def next_job(self, study: optuna.Study) -> Job:
        return Job.RUN if self._search().next_job(study) else Job.DONE

    def __call__(self, trial: optuna.Trial) -> float:
        return self._search()(trial)

    def label(self, trial: FrozenTrial) -> str:
        return f"rung {TrialRecord.of(trial).rung}"

    def final_training(self, study: optuna.Study, display: Display, storage_url: str | None, out: Path) -> Finals:
        search = self._search()
        assert self.calibrated is not None
        display.phase("final training")
        out.mkdir(parents=True, exist_ok=True)
        return train_finals(study, self.prepared, search.plan, self.calibrated, out, artifact_store(storage_url), display)

    def done_line(self, study: optuna.Study) -> str:
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        return f"the search's time is up: {len(finished)} trials finished"

    def finish(self, study: optuna.Study, finals: Finals | None) -> list[str]:
        """Keep the run's figures on the study; the line that says how much of the budget it took."""
        if finals is None:
            return []
        wall = time.time() - self.started
        study.set_user_attr(
            RESULT_ATTR,
            {
                "budget": self.budget,
                "wall_seconds": wall,
                "test_accuracy": {str(m.trial_number): m.test_accuracy for m in finals.models},
                "ensemble_test_accuracy": finals.ensemble.test_accuracy if finals.ensemble else None,
            },
        )
        return [
            f"Budget {self.budget:.0f}s: done in {wall:.0f}s ({100 * wall / self.budget:.1f}% of it), "
            "from the command's start to the last card."
        ]
