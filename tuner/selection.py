"""Which trials to export: the best complete ones that meet the study's constraints.

A trial whose user attribute `feasible` is False broke a constraint of the
study (for example `--max-gap`, the overfitting limit) and is never exported,
however high its accuracy. Single objective: the top K by the objective.
Several objectives: the Pareto-optimal trials (`study.best_trials`), best
accuracy first, at most K of them.
"""

from __future__ import annotations

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


def is_feasible(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("feasible", True) is not False


def _dominates(a: FrozenTrial, b: FrozenTrial, directions) -> bool:
    signs = [1 if d == StudyDirection.MAXIMIZE else -1 for d in directions]
    better_or_equal = all(s * x >= s * y for s, x, y in zip(signs, a.values, b.values))
    return better_or_equal and any(s * x > s * y for s, x, y in zip(signs, a.values, b.values))


def _pareto_front(study: optuna.Study, feasible: list[FrozenTrial]) -> list[FrozenTrial]:
    """`study.best_trials` without infeasible trials; recomputed among feasible ones if
    infeasible trials hid them (a feasible trial dominated only by infeasible ones is optimal)."""
    front = [t for t in study.best_trials if is_feasible(t)]
    if len(front) == len(study.best_trials):
        return front
    return [t for t in feasible if not any(_dominates(o, t, study.directions) for o in feasible)]


def select_trials(study: optuna.Study, top: int = 1) -> list[FrozenTrial]:
    """The trials to export, best first (empty when no feasible trial completed)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feasible = [t for t in complete if is_feasible(t)]
    if not feasible:
        return []
    if len(study.directions) == 1:
        descending = study.direction == StudyDirection.MAXIMIZE
        ranked = sorted(feasible, key=lambda t: (-t.value if descending else t.value, t.number))
    else:
        first = 1 if study.directions[0] == StudyDirection.MAXIMIZE else -1
        ranked = sorted(_pareto_front(study, feasible), key=lambda t: (-first * t.values[0], t.number))
    return ranked[:top]


def best_baseline(study: optuna.Study) -> FrozenTrial | None:
    """The seed baseline (user attribute `baseline`) with the highest CV accuracy."""
    baselines = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "baseline" in t.user_attrs and "val_accuracy_mean" in t.user_attrs
    ]
    return max(baselines, key=lambda t: t.user_attrs["val_accuracy_mean"], default=None)
