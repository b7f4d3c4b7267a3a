"""A budget study's section of the summary: what each rung judged, and the seed baselines at their rungs."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.budget.plan import PLAN_ATTR, BudgetPlan
from tuner.core.record import TrialRecord


def budget_section(study: optuna.Study) -> list[str]:
    """A budget study's search: what each rung judged, and each seed baseline against the best at the same rung."""
    if PLAN_ATTR not in study.user_attrs:
        return []  # interrupted before its plan was made
    plan = BudgetPlan.from_dict(study.user_attrs[PLAN_ATTR])
    trials = study.get_trials(deepcopy=False)
    lines = [
        f"## Budget search ({plan.budget:.0f}s budget)",
        "",
        f"{'rung':>4}  {'fidelity':<28} {'judged':>6} {'rejected':>8}  best",
    ]
    best_at: dict[int, FrozenTrial] = {}
    for rung in plan.rungs:
        here = [t for t in trials if TrialRecord.of(t).rung == rung.index]
        judged = [t for t in here if t.state == TrialState.COMPLETE]
        rejected = sum(t.state == TrialState.PRUNED for t in here)
        if judged:
            best_at[rung.index] = max(judged, key=lambda t: t.values[0])
        best = best_at.get(rung.index)
        shown = f"{best.values[0]:.4f} (trial {best.number})" if best else "-"
        if rung.epochs:
            fidelity = f"{rung.images} images x {rung.epochs} epochs"
        else:  # each configuration trains the epochs of its final training: show their range
            epochs = sorted(int(TrialRecord.of(t).fidelity.get("epochs", 0)) for t in judged)
            shown_epochs = "-" if not epochs else f"{epochs[0]}" if epochs[0] == epochs[-1] else f"{epochs[0]}-{epochs[-1]}"
            fidelity = f"{rung.images} images x {shown_epochs} epochs"
        lines.append(f"{rung.index:>4}  {fidelity:<28} {len(judged):>6} {rejected:>8}  {shown}")
    baselines = [t for t in trials if TrialRecord.of(t).baseline and t.state == TrialState.COMPLETE]
    if baselines:
        lines += ["", "## Seed baselines (each against the best configuration judged at the same rung)", ""]
        for trial in sorted(baselines, key=lambda t: (TrialRecord.of(t).rung, t.number)):
            level = TrialRecord.of(trial).rung
            delta = (best_at[level].values[0] - trial.values[0]) * 100
            lines.append(
                f"{TrialRecord.of(trial).baseline:<18} rung {level}: {trial.values[0]:.4f}  "
                f"best at rung {level} vs it: {delta:+.1f} points"
            )
    return lines
