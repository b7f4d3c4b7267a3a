"""The Pareto front of a two-objective study, and where the seed baselines stand against it.

The front is Optuna's own `study.best_trials`: the complete, feasible trials
that no other complete, feasible trial beats on one objective without losing
on another. A person picks the trade-off from it, as seed 000 did between
VII and VIII (0.3 points of accuracy for a 5x shorter time).
"""

from __future__ import annotations

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


def front(study: optuna.Study) -> list[FrozenTrial]:
    """Pareto-optimal trials, most accurate first (ties: cheaper first)."""
    signs = [-1 if d == StudyDirection.MAXIMIZE else 1 for d in study.directions]
    return sorted(study.best_trials, key=lambda t: ([s * v for s, v in zip(signs, t.values)], t.number))


def dominates(a: FrozenTrial, b: FrozenTrial, directions) -> bool:
    """a is no worse than b on every objective and better on at least one."""
    signs = [-1 if d == StudyDirection.MAXIMIZE else 1 for d in directions]
    a_loss = [s * v for s, v in zip(signs, a.values)]
    b_loss = [s * v for s, v in zip(signs, b.values)]
    return all(x <= y for x, y in zip(a_loss, b_loss)) and a_loss != b_loss


def standing(trial: FrozenTrial, front_trials: list[FrozenTrial], directions) -> str:
    """Where one trial stands: on the front, dominated by which front trials, or why it has no place."""
    if trial.state != TrialState.COMPLETE:
        return f"{trial.state.name.lower()}: {trial.user_attrs.get('stopped', 'no values')}"
    if trial.user_attrs.get("feasible") is False:
        return f"infeasible (overfitting gap {trial.user_attrs.get('overfit_gap', float('nan')):+.4f} over --max-gap)"
    if any(t.number == trial.number for t in front_trials):
        return "on the front"
    winners = [t for t in front_trials if dominates(t, trial, directions)]
    names = ", ".join(_label(t) for t in winners)
    return f"dominated by {names}" if winners else "not on the front"


def _label(trial: FrozenTrial) -> str:
    baseline = trial.user_attrs.get("baseline")
    return f"trial {trial.number} ({baseline})" if baseline else f"trial {trial.number}"


def _figures(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    if "val_accuracy_mean" not in attrs:
        return f"{'-':>9} {'-':>9} {'-':>11}"
    return (
        f"{attrs['val_accuracy_mean'] * 100:8.3f}% {attrs['seconds_per_fold']:8.2f}s "
        f"{attrs['trainable_params']:>11,}"
    )


def front_lines(study: optuna.Study) -> list[str]:
    """The front as a table (accuracy, seconds per fold, parameters), then each baseline's standing."""
    trials = study.get_trials(deepcopy=False)
    front_trials = front(study)
    goals = ", ".join(
        f"{name} {'up' if d == StudyDirection.MAXIMIZE else 'down'}"
        for name, d in zip(study.metric_names or [], study.directions)
    )
    lines = [f"## Pareto front ({goals}): {len(front_trials)} trial{'s' * (len(front_trials) != 1)}", "", f"{'trial':>5} {'accuracy':>9} {'s/fold':>9} {'params':>11}"]
    for trial in front_trials:
        lines.append(f"{trial.number:>5} {_figures(trial)}  {trial.user_attrs.get('baseline', '')}".rstrip())
    baselines = [t for t in trials if "baseline" in t.user_attrs]
    if baselines:
        lines += ["", "## Where the seed baselines stand", ""]
        width = max(len(t.user_attrs["baseline"]) for t in baselines)
        for trial in baselines:
            lines.append(
                f"{trial.user_attrs['baseline']:<{width}} trial {trial.number:>3} {_figures(trial)}  "
                f"{standing(trial, front_trials, study.directions)}"
            )
    return lines
