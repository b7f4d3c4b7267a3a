"""The one printer of a trial's line and the running best, for every strategy and every worker."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from tuner.core.record import TrialRecord
from tuner.results import ranking
from tuner.search.strategy import Display, SearchStrategy


class TrialPrinter:
    """Writes through a Display: `trial 12 rung 1 COMPLETE 0.9123 41.0s start-vgg-32-64 ...`."""

    def __init__(self, display: Display, strategy: SearchStrategy):
        self.display, self.strategy = display, strategy

    def say(self, text: str) -> None:
        """Any other line of the run."""
        self.display.line(text)

    def trial(self, study: optuna.Study, trial: FrozenTrial, seconds: float) -> None:
        """A finished trial's line, then the running best."""
        stored = TrialRecord.of(trial)
        values = "" if trial.values is None else " ".join(f"{v:.4f}" for v in trial.values)
        label = self.strategy.label(trial)
        name = stored.baseline or stored.portfolio or ""
        self.display.line(
            f"trial {trial.number:>4} {label + ' ' if label else ''}{trial.state.name:<8} {values:<10} {seconds:6.1f}s "
            f"{name} {stored.stopped or ''}".rstrip()
        )
        self.display.trial_done()
        if len(study.directions) == 1 and self.display.shows_best:
            best = ranking.best_trials(study)
            if best:
                label = self.strategy.label(best[0])
                self.display.best(f"{best[0].values[0]:.4f} (trial {best[0].number}{', ' + label if label else ''})")
