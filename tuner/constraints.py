"""Overfitting as a constraint: a trial whose mean (val loss - train loss) exceeds --max-gap is infeasible.

Optuna 5 reads constraints from the trial itself (`Trial.set_constraint`;
the samplers' `constraints_func` argument is deprecated since 5.0): a value
above 0 marks the trial infeasible. TPE, GP and NSGA-II then steer away from
infeasible regions, and `study.best_trial(s)` skip infeasible trials.
Random sampling ignores constraints; CMA-ES cannot use them (config refuses).

Every complete trial also gets the user attribute `feasible` (True when no
--max-gap is set), which export and report read without knowing Optuna's keys.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

GAP_CONSTRAINT = "overfit_gap"
_UNMEASURABLE = 1e6  # constraint value for a gap that is NaN or infinite: clearly infeasible, still a number


def record_feasibility(trial: optuna.Trial, gap: float, max_gap: float | None) -> bool:
    """Store the constraint `gap - max_gap` (when a limit is set) and `feasible` on the trial."""
    if max_gap is None:
        trial.set_user_attr("feasible", True)
        return True
    excess = gap - max_gap if math.isfinite(gap) else _UNMEASURABLE
    trial.set_constraint(GAP_CONSTRAINT, excess)
    feasible = excess <= 0
    trial.set_user_attr("feasible", feasible)
    return feasible


def max_gap_of(study: optuna.Study) -> float | None:
    """The --max-gap the study was created with (stored with its comparable settings)."""
    return (study.user_attrs.get("config") or {}).get("max_gap")


def summary_lines(study: optuna.Study) -> list[str]:
    """One paragraph for the summary: the limit and which complete trials broke it."""
    max_gap = max_gap_of(study)
    if max_gap is None:
        return []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    infeasible = [t for t in complete if t.user_attrs.get("feasible") is False]
    line = f"Overfitting constraint: val loss - train loss <= {max_gap:g}; {len(infeasible)} of {len(complete)} complete trials infeasible"
    if infeasible:
        line += " (" + ", ".join(f"trial {t.number} gap {t.user_attrs.get('overfit_gap', float('nan')):+.4f}" for t in infeasible) + ")"
    return [line]
