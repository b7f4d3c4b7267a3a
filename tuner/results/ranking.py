"""The best trials of a study, in one place: feasibility, single-objective ranking, the Pareto front.

A trial whose record says it broke a constraint (`feasible` false, e.g. over
--max-gap) never ranks, however high its accuracy. Single objective: the
complete feasible trials by value (in a budget study, by the fidelity rung
first: a value judged on more data outranks one judged on less; within a
rung, by the accuracy predicted for the whole training split from the
configuration's learning curve over the rungs, tuner.budget.rungs).
Two objectives: the Pareto front among complete feasible trials, most
accurate first; a person picks the trade-off from it, as seed 000 did
between VII and VIII.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tuner.core.record import TrialRecord


def complete_feasible(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials that meet the study's constraints."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in complete if TrialRecord.of(t).feasible]


def _losses(trial: FrozenTrial, directions: Sequence[StudyDirection]) -> list[float]:
    """The trial's values turned so that lower is better on every objective."""
    return [-v if d == StudyDirection.MAXIMIZE else v for v, d in zip(trial.values, directions)]


def dominates(a: FrozenTrial, b: FrozenTrial, directions: Sequence[StudyDirection]) -> bool:
    """a is no worse than b on every objective and better on at least one."""
    a_loss, b_loss = _losses(a, directions), _losses(b, directions)
    return all(x <= y for x, y in zip(a_loss, b_loss)) and a_loss != b_loss


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Complete feasible trials that no other such trial dominates; most accurate first (ties: cheaper first)."""
    candidates = complete_feasible(study)
    front = [t for t in candidates if not any(dominates(o, t, study.directions) for o in candidates)]
    return sorted(front, key=lambda t: (_losses(t, study.directions), t.number))


def score(trial: FrozenTrial) -> float:
    """What a single-objective trial ranks by: its predicted accuracy where the strategy stored one, else its value."""
    predicted = TrialRecord.of(trial).predicted
    return float(trial.values[0]) if predicted is None else predicted


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Every complete feasible trial, best first (single objective), or the Pareto front (several).

    Judged at rungs, a configuration counts once, by its judgement at the highest rung it reached.
    """
    if len(study.directions) > 1:
        return pareto_front(study)
    sign = -1 if study.direction == StudyDirection.MAXIMIZE else 1
    order = sorted(complete_feasible(study), key=lambda t: (-TrialRecord.of(t).rung, sign * score(t), t.number))
    seen: set[int] = set()
    unique = []
    for trial in order:
        configuration = TrialRecord.of(trial).configuration
        configuration = trial.number if configuration is None else configuration
        if configuration not in seen:
            seen.add(configuration)
            unique.append(trial)
    return unique


def best_trials(study: optuna.Study, top: int | None = None) -> list[FrozenTrial]:
    """The `top` best (all of the front, or the single best, when `top` is None); empty when none is feasible."""
    order = ranked(study)
    if top is None:
        return order if len(study.directions) > 1 else order[:1]
    return order[:top]


def best_baseline(study: optuna.Study) -> FrozenTrial | None:
    """The seed baseline with the highest CV accuracy among the complete ones (judged at rungs: as `ranked` orders)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    baselines = [t for t in complete if TrialRecord.of(t).baseline and TrialRecord.of(t).accuracy is not None]
    return max(
        baselines,
        key=lambda t: (TrialRecord.of(t).rung, TrialRecord.of(t).predicted or TrialRecord.of(t).accuracy or 0.0),
        default=None,
    )


def infeasible(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials that broke a constraint."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if not TrialRecord.of(t).feasible]


def standing(trial: FrozenTrial, front: list[FrozenTrial], directions: Sequence[StudyDirection]) -> str:
    """Where one trial stands: on the front, dominated by which front trials, or why it has no place."""
    stored = TrialRecord.of(trial)
    if trial.state != TrialState.COMPLETE:
        return f"{trial.state.name.lower()}: {stored.stopped or 'no values'}"
    if not stored.feasible:
        gap = stored.cv.overfit_gap if stored.cv else float("nan")
        return f"infeasible (overfitting gap {gap:+.4f} over --max-gap)"
    if any(t.number == trial.number for t in front):
        return "on the front"
    winners = [t for t in front if dominates(t, trial, directions)]
    names = ", ".join(TrialRecord.of(t).label(t.number) for t in winners)
    return f"dominated by {names}" if winners else "not on the front"
