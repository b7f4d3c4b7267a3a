"""`tuner run` in one process: set the study up, enqueue the seed baselines, run trials until the count or timeout."""

from __future__ import annotations

import optuna

from tuner.core.settings import StudyConfig
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.progress import TrialProgress
from tuner.search.samplers import make_sampler
from tuner.search.study import enqueue_baselines, open_study, prepare, record_data_notes


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
    study = open_study(config, storage_url, study_name)
    already_run = len(study.get_trials(deepcopy=False))
    if already_run:  # a resumed study must not draw the first run's parameters again
        study.sampler = make_sampler(config, seed_offset=already_run)
    record_data_notes(study, prepared.dataset)
    enqueue_baselines(study, config, prepared.dataset, prepared.space)
    interrupted = False
    with TrialProgress(study, config.trials, enabled=progress) as bar, interrupts_end_trials():
        try:
            study.optimize(
                prepared.objective,
                n_trials=config.trials,
                timeout=config.timeout,
                callbacks=[bar.on_trial_end],
                catch=(),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
    return study, interrupted
