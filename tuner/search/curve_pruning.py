"""Pruning for two-objective studies, where Optuna itself cannot prune.

Optuna refuses `Trial.report` and `Trial.should_prune` once a study has two
objectives. So in a two-objective study the objective gives the harness a
`CurvePruningReporter` instead, which keeps the trial's accuracy curve and
applies Optuna's median rule to the accuracy objective alone.

How it decides, after each epoch, at global step s (s = fold * epochs + epoch,
the steps of the single-objective path):

1. The trial's validation accuracy at s is added to its curve, stored as the
   user attribute `val_accuracy_curve` ({"s": accuracy}) so that later trials
   can compare with it.
2. No decision while fewer than `n_startup_trials` (5) trials are COMPLETE,
   or while s < `n_warmup_steps` (the study's epochs: one whole first fold).
3. The reference is the median of the accuracies at step s of the COMPLETE
   trials whose curve has step s (pruned and failed trials do not count);
   with none, the trial goes on.
4. The trial is stopped when its best accuracy so far (the highest value of
   its curve up to s) is below that median. It is then PRUNED, with the user
   attribute `stopped` = "pruned at fold F, epoch E (...)", as in the
   single-objective path. At the trial's last step nothing is decided: its
   training is done, so it completes.

Steps 2-4 are exactly `optuna.pruners.MedianPruner(n_startup_trials=5,
n_warmup_steps=epochs)` on a single-objective view (maximise accuracy) of the
study. The second objective (time or parameters) plays no part: a slow but
accurate model is never stopped for being slow. `--pruner none` turns the rule
off (the curve is still recorded); any other --pruner selects this rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from tuner.core.record import CURVE, STOPPED, TrialRecord


@dataclass(frozen=True)
class CurveMedianRule:
    """Optuna's median rule on accuracy curves: stop a trial below the completed trials' median."""

    n_startup_trials: int = 5
    n_warmup_steps: int = 0

    def reason_to_stop(self, curve: dict[int, float], step: int, completed: list[dict[int, float]]) -> str | None:
        """Why the trial with `curve` should stop at `step`, or None to go on."""
        if len(completed) < self.n_startup_trials or step < self.n_warmup_steps:
            return None
        at_step = [c[step] for c in completed if step in c and math.isfinite(c[step])]
        if not at_step:
            return None
        median = float(np.median(at_step))
        best = max((value for s, value in curve.items() if s <= step and math.isfinite(value)), default=-math.inf)
        if best < median:
            return f"best {best:.4f} below the median {median:.4f} of {len(at_step)} completed trials at step {step}"
        return None


class CurvePruningReporter:
    """The harness' reporter in a two-objective trial: record the curve, apply the rule."""

    def __init__(self, trial: optuna.Trial, epochs: int, rule: CurveMedianRule | None, last_step: int | None = None):
        self.trial, self.epochs, self.rule, self.last_step = trial, epochs, rule, last_step
        self.curve: dict[int, float] = {}

    def __call__(self, step: int, value: float) -> None:
        self.curve[step] = float(value)
        self.trial.set_user_attr(CURVE, {str(s): v for s, v in self.curve.items()})
        if self.rule is None or step == self.last_step:  # the last step's training is paid for: it completes
            return
        completed = self.trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        reason = self.rule.reason_to_stop(self.curve, step, [TrialRecord.of(t).curve for t in completed])
        if reason:
            fold, epoch = divmod(step, self.epochs)
            message = f"pruned at fold {fold + 1}, epoch {epoch + 1} (val accuracy {value:.4f}; {reason})"
            self.trial.set_user_attr(STOPPED, message)
            raise optuna.TrialPruned(message)


def reporter_for(trial: optuna.Trial, epochs: int, pruner: str, last_step: int | None = None) -> CurvePruningReporter:
    """The reporter a two-objective trial uses; `pruner` is the study's --pruner name."""
    rule = None if pruner == "none" else CurveMedianRule(n_startup_trials=5, n_warmup_steps=epochs)
    return CurvePruningReporter(trial, epochs, rule, last_step)
