"""`tuner run` in one process: set the study up, enqueue the seed baselines, run trials until the count or timeout.

A study whose trials would take many hours on this machine says so first,
with the estimate from the same calibration a --budget run makes, and names
--budget: most people have an hour, not a trial count.

On a database server the run rides out outages (tuner.storage.outages); one
longer than the study's `outage_limit` ends it with one line, its trial left
RUNNING for the heartbeat to fail and re-queue (Optuna would tell it FAIL, to
a database that is not there).
"""

from __future__ import annotations

import sys
from typing import Any

import optuna

from tuner.core import interrupt
from tuner.core.settings import StudyConfig
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.progress import TrialProgress
from tuner.search.samplers import make_sampler
from tuner.search.study import Prepared, enqueue_baselines, open_study, prepare, record_data_notes
from tuner.storage.outages import Outages, StorageOutage
from tuner.storage.storages import open_storage
from tuner.storage.urls import DEFAULT_STORAGE

OPTIMISTIC_SECONDS_PER_IMAGE = 2e-5  # faster than any CPU here: below this estimate no calibration is worth it
LONG_STUDY_SECONDS = 2 * 3600  # "many hours": say so above this


def estimated_seconds(prepared: Prepared, seconds_per_image: float) -> float:
    """Training seconds of `config.trials` whole trials (no pruning) at `seconds_per_image`."""
    config = prepared.config
    per_fold = len(prepared.dataset.y_train) * (config.folds - 1) / config.folds
    return config.trials * config.folds * config.repeats * config.epochs * per_fold * seconds_per_image


def warn_if_long(prepared: Prepared) -> float | None:
    """Calibrate and print one line when the study could take more than LONG_STUDY_SECONDS; returns the estimate."""
    if estimated_seconds(prepared, OPTIMISTIC_SECONDS_PER_IMAGE) <= LONG_STUDY_SECONDS:
        return None
    from tuner.search.budget_search import typical_seconds_per_image
    from tuner.training.calibration import calibrate_dataset

    speed, _ = calibrate_dataset(prepared.dataset)
    typical = typical_seconds_per_image(prepared, speed, prepared.config.seed)
    seconds = estimated_seconds(prepared, typical)
    if seconds > LONG_STUDY_SECONDS:
        config = prepared.config
        print(
            f"tuner: {config.trials} trials x {config.folds * config.repeats} folds x {config.epochs} epochs could take "
            f"about {seconds / 3600:.0f} hours on this machine (a typical configuration of the {config.space!r} space "
            f"trains at {typical * 1000:.2f} ms per image; pruning stops some trials early); for the best model in a "
            "fixed time, use --budget, e.g. --budget 1h",
            file=sys.stderr,
            flush=True,
        )
    return seconds


class _Abandoned(BaseException):
    """Carries a StorageOutage past Optuna's `except Exception`, which would tell the trial FAIL."""


def run_study(
    config: StudyConfig,
    storage_url: str | None = None,
    study_name: str | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> tuple[optuna.Study, bool]:
    """Run `config.trials` more trials (or until the timeout); returns the study and whether it was interrupted.

    On Ctrl-C or SIGTERM the trial in flight is failed with its reason,
    never left RUNNING, and the study is returned as it stands.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prepared = prepare(config, verbose)
    storage = open_storage(storage_url, outages=Outages(storage_url or DEFAULT_STORAGE, config.outage_limit))
    study = open_study(config, storage_url, study_name, storage=storage)
    warn_if_long(prepared)
    already_run = len(study.get_trials(deepcopy=False))
    if already_run:  # a resumed study must not draw the first run's parameters again
        study.sampler = make_sampler(config, seed_offset=already_run)
    record_data_notes(study, prepared.dataset)
    enqueue_baselines(study, config, prepared.dataset, prepared.space)
    interrupted = False

    def objective(trial: optuna.Trial) -> Any:
        try:
            return prepared.objective(trial)
        except StorageOutage as outage:
            raise _Abandoned(outage) from None

    with TrialProgress(study, config.trials, enabled=progress) as bar, interrupts_end_trials():
        try:
            study.optimize(
                objective,
                n_trials=config.trials,
                timeout=config.timeout,
                callbacks=[bar.on_trial_end, lambda study, trial: interrupt.check()],
                catch=(),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
        except _Abandoned as abandoned:
            raise abandoned.args[0] from None
    return study, interrupted
