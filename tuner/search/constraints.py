"""Overfitting as a constraint: a trial whose mean (val loss - train loss) exceeds --max-gap is infeasible.

Optuna 5 reads constraints from the trial itself (`Trial.set_constraint`;
the samplers' `constraints_func` argument is deprecated since 5.0): a value
above 0 marks the trial infeasible. TPE, GP and NSGA-II then steer away from
infeasible regions, and `study.best_trial(s)` skip infeasible trials.
Random sampling ignores constraints; CMA-ES cannot use them (config refuses).

Every complete trial also gets the user attribute `feasible` (True when no
--max-gap is set), which export and report read without knowing Optuna's keys
(tuner.core.record).
"""

from __future__ import annotations

import math

import optuna

from tuner.core.record import FEASIBLE

GAP_CONSTRAINT = "overfit_gap"
_UNMEASURABLE = 1e6  # constraint value for a gap that is NaN or infinite: clearly infeasible, still a number


def record_feasibility(trial: optuna.Trial, gap: float, max_gap: float | None) -> bool:
    """Store the constraint `gap - max_gap` (when a limit is set) and `feasible` on the trial."""
    if max_gap is None:
        trial.set_user_attr(FEASIBLE, True)
        return True
    excess = gap - max_gap if math.isfinite(gap) else _UNMEASURABLE
    trial.set_constraint(GAP_CONSTRAINT, excess)
    feasible = excess <= 0
    trial.set_user_attr(FEASIBLE, feasible)
    return feasible
