"""`tuner run STUDY --budget 1h`: the best model a wall-clock budget buys, planned by the tuner.

Within the budget, counted from the command's start to the exported card:
load the data; calibrate this machine's training speed (tuner.training.
calibration); plan the search, the final training and the export
(tuner.search.plan); search by asynchronous successive halving over data
size, each rung a miniature of the final training, in this process or in `--workers N` processes
(tuner.search.budget_search); train the winner on the whole training split
with a cosine learning rate fitted to the time left, and, while time is
left, the next-best models for an averaged ensemble; test each once; write
the models and their cards (tuner.results). Ctrl-C keeps every finished
trial and exports nothing half-trained.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tuner.budget.display import BudgetDisplay
from tuner.core import interrupt
from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.settings import StudyConfig
from tuner.core.speed import SpeedModel
from tuner.distributed.local_workers import run_local_workers, storage_for_workers
from tuner.results import ranking
from tuner.results.ensemble import ExportedEnsemble, export_ensemble
from tuner.results.export import ExportedModel, FinalPlan, export_trial
from tuner.results.export_study import same_shape_members, study_plots, write_manifest
from tuner.search.budget_search import BudgetSearch, plan_for
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.plan import MAX_FINAL_EPOCHS, MIN_FINAL_EPOCHS, SPEED_MARGIN, BudgetPlan, final_epochs
from tuner.search.study import PLAN_ATTR, SPEED_ATTR, Prepared, open_study, prepare, record_data_notes
from tuner.storage.outages import Outages
from tuner.storage.storages import artifact_store, open_storage
from tuner.storage.urls import DEFAULT_STORAGE
from tuner.training.calibration import calibrate_dataset

MAX_MEMBERS = 5  # an ensemble averages at most this many final models
RESULT_ATTR = "budget_result"


@dataclass
class BudgetOutcome:
    """How a budget run ended."""

    study: optuna.Study
    storage_url: str | None
    interrupted: bool
    models: list[ExportedModel]
    ensemble: ExportedEnsemble | None
    wall_seconds: float
    out: Path


def _plan(
    prepared: Prepared, study: optuna.Study, speed: SpeedModel, started: float, workers: int, start_up: float
) -> BudgetPlan:
    """This run's plan; a study searched before keeps its fidelities (so its rungs stay comparable).

    Worker processes start as this one did (Python, imports, the data): the
    search's time is counted from when they are expected to be ready.
    """
    ready = time.time() + (start_up if workers > 1 else 0.0)
    plan = plan_for(prepared, speed, started=started, now=ready, workers=workers)
    stored = study.user_attrs.get(PLAN_ATTR)
    if stored is not None:
        kept = BudgetPlan.from_dict(stored)
        plan = dataclasses.replace(plan, rungs=kept.rungs, matched_seconds=kept.matched_seconds)
    return plan


def _search_here(study: optuna.Study, search: BudgetSearch, display: BudgetDisplay) -> None:
    """Run the search in this process until the plan's search deadline."""

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        interrupt.check()
        stored = TrialRecord.of(trial)
        value = "" if trial.value is None else f"{trial.value:.4f}"
        name = stored.baseline or stored.portfolio
        label = f" {name}" if name else ""
        display.line(
            f"trial {trial.number:>3} rung {stored.rung} {trial.state.name:<8} {value:<6}{label} "
            f"{stored.stopped or ''}".rstrip()
        )
        best = ranking.best_trials(study)
        if best:
            display.best(f"{best[0].value:.4f} (trial {best[0].number}, rung {TrialRecord.of(best[0]).rung})")
        if not search.next_job(study):
            study.stop()

    if search.next_job(study):
        study.optimize(search, callbacks=[after_trial], catch=(Exception,), gc_after_trial=True)


def _train_finals(
    study: optuna.Study,
    prepared: Prepared,
    plan: BudgetPlan,
    speed: SpeedModel,
    out: Path,
    store: Any,
    display: BudgetDisplay,
) -> tuple[list[ExportedModel], ExportedEnsemble | None]:
    """The winner, then the next best while time is left; each tested once; their ensemble if there are several."""
    ranked = ranking.best_trials(study, top=MAX_MEMBERS)
    if not ranked:
        raise TunerError(
            f"no configuration was judged within the search's time; give a longer --budget than "
            f"{plan.budget:.0f}s or a smaller --subset"
        )
    config, dataset = prepared.config, prepared.dataset
    test = dataset.test_split()  # once for the whole run
    members: list[ExportedModel] = []
    for position, trial in enumerate(ranked):
        stored = TrialRecord.of(trial)
        spec = stored.spec
        assert spec is not None
        per_image = (stored.train_seconds_per_image or speed.train_seconds_per_image(spec)) * SPEED_MARGIN
        left = plan.final_deadline - time.time() - speed.trace_seconds
        epochs = final_epochs(left, len(dataset.y_train), per_image)
        if epochs < (1 if position == 0 else MIN_FINAL_EPOCHS):
            if position == 0:
                epochs = 1  # the winner is always trained, even late
            else:
                break
        rule = (
            f"budget: cosine to zero over {epochs} epochs fitted to the {left:.0f}s left at "
            f"{per_image * 1000:.3f} ms per image (trial {trial.number}, rung {stored.rung})"
        )
        display.line(
            f"final training {position + 1}: trial {trial.number} (rung {stored.rung}, validation "
            f"{trial.value:.4f}), {epochs} epochs on {len(dataset.y_train)} images"
        )
        exported = export_trial(
            study,
            trial,
            config,
            dataset,
            test,
            out,
            store,
            plan=FinalPlan(epochs, rule, deadline=plan.final_deadline, max_epochs=MAX_FINAL_EPOCHS),
        )
        display.line(
            f"  trial {trial.number}: test accuracy {exported.test_accuracy:.4f} after {exported.final_epochs} "
            f"epochs -> {exported.model_path}"
        )
        members.append(exported)
    ensemble = None
    same_shape = same_shape_members(members, test[0].shape[1:], MAX_MEMBERS)
    if len(same_shape) >= 2:
        ensemble = export_ensemble(study.study_name, same_shape, test, dataset.class_names, out)
        display.line(f"  ensemble of {len(same_shape)}: test accuracy {ensemble.test_accuracy:.4f} -> {ensemble.model_path}")
    return members, ensemble


def run_budget(
    config: StudyConfig,
    *,
    started: float,
    storage_url: str | None = None,
    study_name: str | None = None,
    study_arg: str = "",
    given: dict[str, Any] | None = None,
    workers: int | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> BudgetOutcome:
    """Plan and run `config.budget` seconds counted from `started` (see the module's docstring)."""
    assert config.budget is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if len(config.objectives) > 1:
        raise TunerError("--budget plans for accuracy alone; leave out --objectives, or --budget to weigh time or size")
    prepared = prepare(config, verbose)
    start_up = time.time() - started  # what each worker process will take again before its first trial
    url = storage_for_workers(storage_url) if workers else storage_url
    interrupted = False
    models: list[ExportedModel] = []
    ensemble = None
    out = Path("exports") / (study_name or config.name)
    with BudgetDisplay(config.budget, started, enabled=progress) as display:
        storage = open_storage(url, outages=Outages(url or DEFAULT_STORAGE, config.outage_limit))
        study = open_study(config, url, study_name, storage=storage)
        display.phase("calibrating")
        speed, probes = calibrate_dataset(prepared.dataset)
        for probe in probes:
            display.line(
                f"  {probe.name}: {probe.train_seconds_per_image * 1000:.3f} ms per training image, "
                f"{probe.eval_seconds_per_image * 1000:.3f} per validation image, tracing {probe.trace_seconds:.1f}s"
            )
        plan = _plan(prepared, study, speed, started, workers or 1, start_up)
        study.set_user_attr(PLAN_ATTR, plan.to_dict())
        study.set_user_attr(SPEED_ATTR, dataclasses.asdict(speed))
        record_data_notes(study, prepared.dataset)
        for line in plan.describe():
            display.line(line)
        display.phase("search")
        try:
            with interrupts_end_trials():
                if workers:
                    local = run_local_workers(study_arg, given or {}, config, workers, url, study_name, bool(verbose))
                    interrupted = local.interrupted
                else:
                    _search_here(study, BudgetSearch(prepared, plan, speed), display)
                if not interrupted:
                    display.phase("final training")
                    out.mkdir(parents=True, exist_ok=True)
                    models, ensemble = _train_finals(study, prepared, plan, speed, out, artifact_store(url), display)
                    display.phase("export")
                    study_files, _ = study_plots(study, out, artifact_store(url))
                    write_manifest(out, study, models, ensemble, study_files)
        except KeyboardInterrupt:
            interrupted = True
    wall = time.time() - started
    if not interrupted:
        study.set_user_attr(
            RESULT_ATTR,
            {
                "budget": config.budget,
                "wall_seconds": wall,
                "test_accuracy": {str(m.trial_number): m.test_accuracy for m in models},
                "ensemble_test_accuracy": ensemble.test_accuracy if ensemble else None,
            },
        )
    return BudgetOutcome(study, url, interrupted, models, ensemble, wall, out)
