"""`tuner run` in one process: set the study up, enqueue the seed baselines, run trials until the count or timeout.

On a database server the run rides out outages (tuner.storage.outages); one
longer than the study's `outage_limit` ends it with one line, its trial left
RUNNING for the heartbeat to fail and re-queue (Optuna would tell it FAIL, to
a database that is not there).
"""

from __future__ import annotations

from typing import Any

import optuna

from tuner.core.settings import StudyConfig
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.progress import TrialProgress
from tuner.search.samplers import make_sampler
from tuner.search.study import enqueue_baselines, open_study, prepare, record_data_notes
from tuner.storage.outages import Outages, StorageOutage
from tuner.storage.storages import open_storage
from tuner.storage.urls import DEFAULT_STORAGE


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
                callbacks=[bar.on_trial_end],
                catch=(),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
        except _Abandoned as abandoned:
            raise abandoned.args[0] from None
    return study, interrupted
