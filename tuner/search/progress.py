"""A progress bar over the trials of one run, with the running best."""

from __future__ import annotations

from typing import Any

import optuna
from tqdm.auto import tqdm

from tuner.core.record import TrialRecord


class TrialProgress:
    """Use as a context manager; pass `on_trial_end` to `study.optimize` callbacks."""

    def __init__(self, study: optuna.Study, n_trials: int | None, enabled: bool = True):
        self.study, self.n_trials, self.enabled = study, n_trials, enabled
        self.bar: Any = None

    def __enter__(self) -> TrialProgress:
        if self.enabled:
            self.bar = tqdm(total=self.n_trials, unit="trial", desc=self.study.study_name, dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_trial_end(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """A line for the finished trial; the bar's postfix shows the running best."""
        if self.bar is None:
            return
        value = "" if trial.values is None else " ".join(f"{v:.4f}" for v in trial.values)
        stored = TrialRecord.of(trial)
        label, reason = stored.baseline or "", stored.stopped or ""
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        self.bar.write(
            f"trial {trial.number:>4} {trial.state.name:<8} {value:<10} {seconds:7.1f}s {label} {reason}".rstrip()
        )
        if len(study.directions) == 1:
            try:
                best = study.best_trial
                self.bar.set_postfix_str(f"best {best.value:.4f} (trial {best.number})")
            except ValueError:
                pass
        self.bar.update(1)
