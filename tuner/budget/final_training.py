"""The final training of a budget run: the winner, then the next best while time is left, and their ensemble.

Each final model trains on the whole training split with a cosine learning
rate fitted to the time left before the plan's final deadline
(tuner.results.export), is tested once on the test split, read once for the
whole run, and written with its card; models that take the same images are
averaged into an ensemble with its own card. A next-best model trains only if
the time left buys it a share of the winner's epochs (PlanPolicy.least_member_epochs):
a member trained far shorter pulls the average down.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from tuner.budget.plan import MAX_MEMBERS, BudgetPlan, final_seconds_per_image
from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.speed import SpeedModel
from tuner.results import ranking
from tuner.results.ensemble import export_ensemble
from tuner.results.export import ExportedModel, FinalPlan, export_trial
from tuner.results.export_study import same_shape_members, study_plots, write_manifest
from tuner.search.strategy import Display, Finals
from tuner.search.study import Prepared


def train_finals(
    study: optuna.Study,
    prepared: Prepared,
    plan: BudgetPlan,
    speed: SpeedModel,
    out: Path,
    store: Any,
    display: Display,
) -> Finals:
    """The winner, then the next best while time is left, each tested once; their ensemble; the study's plots."""
    ranked = ranking.best_trials(study, top=MAX_MEMBERS)
    if not ranked:
        raise TunerError(
            f"no configuration was judged within the search's time; give a longer --budget than "
            f"{plan.budget:.0f}s or a smaller --subset"
        )
    config, dataset, policy = prepared.config, prepared.dataset, plan.policy
    test = dataset.test_split()  # once for the whole run
    members: list[ExportedModel] = []
    for position, trial in enumerate(ranked):
        stored = TrialRecord.of(trial)
        per_image = final_seconds_per_image(stored, speed, policy)
        left = plan.final_deadline - time.time() - speed.trace_seconds
        epochs = policy.final_epochs(left, len(dataset.y_train), per_image)
        if position == 0:
            epochs = max(1, epochs)  # the winner is always trained, even late
        elif epochs < policy.least_member_epochs(members[0].final_epochs):
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
            plan=FinalPlan(epochs, rule, deadline=plan.final_deadline, max_epochs=policy.max_final_epochs),
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
    display.phase("export")
    study_files, skipped = study_plots(study, out, store)
    write_manifest(out, study, members, ensemble, study_files)
    return Finals(members, ensemble, skipped, out)
