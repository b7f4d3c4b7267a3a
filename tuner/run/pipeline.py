"""The run pipeline: prepare -> open the study -> the strategy's set-up -> trials -> final training -> export.

`run_study` is `tuner run` (in this process, or in `--workers N` local
processes that it waits for); `work` is `tuner worker`, which joins a study
and runs its trials. Both choose the strategy once (tuner.run.strategies)
and run the same trial loop (tuner.run.trial_loop); what differs between a
trial count and a time budget lives behind the strategy. Ctrl-C or SIGTERM
keep every finished trial and export nothing half-trained; the same command
continues. On a database server the run rides out outages
(tuner.storage.outages); one longer than the study's `outage_limit` ends it
with one line, its trial left RUNNING for the heartbeat to fail and re-queue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.core.space import SearchSpace
from tuner.data.dataset import DataSet
from tuner.distributed.local_workers import run_local_workers, storage_for_workers
from tuner.distributed.shared_study import SharedStudy, sampler_seed_offset, worker_id
from tuner.results.formats import check_formats
from tuner.run.printer import TrialPrinter
from tuner.run.strategies import choose_strategy
from tuner.run.tracking import trial_callbacks
from tuner.run.trial_loop import run_trials
from tuner.run.worker_display import WorkerDisplay
from tuner.search.signals import interrupts_end_trials
from tuner.search.strategy import STRATEGY_ATTR, Finals, SearchStrategy
from tuner.search.study import open_study, record_data_notes
from tuner.storage.preflight import check_folder, check_url
from tuner.storage.storages import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, check_server
from tuner.storage.urls import DEFAULT_STORAGE, mask_url


@dataclass
class RunResult:
    """How a run (or a worker) ended."""

    study: optuna.Study
    storage_url: str | None
    interrupted: bool = False
    exit_code: int = 0  # 0, or the first failed local worker's status
    finals: Finals | None = None  # what the final training exported (None: nothing)
    closing: list[str] = field(default_factory=list)  # the strategy's last words (e.g. the share of a budget used)
    search_test_split_reads: int = 0  # reads of the test split before the final training: 0, or a bug


def _open(
    config: StudyConfig, shared: SharedStudy, strategy: SearchStrategy, storage: Any, seed_offset: int = 0
) -> optuna.Study:
    """The study, created or checked for this strategy, under the study lock."""
    study = open_study(
        config,
        shared.url,
        shared.name,
        storage=storage,
        seed_offset=seed_offset,
        pruner=strategy.pruner(),
        resumable=strategy.check_resumable,
    )
    if study.user_attrs.get(STRATEGY_ATTR) != strategy.name:
        study.set_user_attr(STRATEGY_ATTR, strategy.name)
    kept = strategy.prepared.objective.keep_drawn_flips(study)
    if kept:
        shared.say(kept)
    return study


def _write_study_note(study: optuna.Study) -> None:
    """What optuna-dashboard shows on the study's page, written with the results (unless someone wrote one)."""
    from tuner.dashboard.notes import write_study_note

    write_study_note(study)


def run_study(
    config: StudyConfig,
    *,
    started: float,
    storage_url: str | None = None,
    study_name: str | None = None,
    workers: int | None = None,
    study_arg: str = "",
    given: dict[str, Any] | None = None,
    verbose: int = 0,
    progress: bool = True,
    strategy: SearchStrategy | None = None,
    dataset: DataSet | None = None,
    space: SearchSpace | None = None,
    out: Path | None = None,
) -> RunResult:
    """Run `config`'s study to its end (see the module's docstring).

    `workers`: run the trials in that many local worker processes, started
    as `tuner worker STUDY_ARG` with the user's flags `given`. `strategy`:
    one built by the caller (e.g. a budget with another plan policy), else
    the one `config` asks for, judging on `dataset` and `space` when given
    (the Python API) instead of those the config names. The final models go
    to `out` (default exports/STUDY_NAME).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_formats(config.export_formats)  # a format this machine cannot write is refused before any training
    url = storage_for_workers(storage_url) if workers else storage_url
    _check_storage(url)
    if workers and dataset is not None:
        raise TunerError("worker processes load the data by its name; give a data set's name or folder, not arrays")
    callbacks = trial_callbacks(config)  # a missing MLflow or a bad tracking URI fails here, before any training
    if strategy is None:
        strategy = choose_strategy(
            config,
            started=started,
            verbose=verbose,
            workers=workers or 1,
            shared=bool(workers),
            dataset=dataset,
            space=space,
        )
    name = study_name or config.name
    interrupted, code, finals = False, 0, None
    search_reads = strategy.prepared.dataset.test_split_reads
    display = strategy.display(progress)
    printer = TrialPrinter(display, strategy)
    shared = SharedStudy(url or DEFAULT_STORAGE, name, outage_limit=config.outage_limit, say=printer.say)
    shared.join(lambda storage: _open(config, shared, strategy, storage))  # bad input fails here, before any bar
    study = shared.study
    with display:
        try:
            with interrupts_end_trials():
                strategy.begin(study, display)
                if workers:
                    local = run_local_workers(study_arg, given or {}, config, workers, shared.url, name, bool(verbose))
                    interrupted, code = local.interrupted, local.exit_code
                else:
                    shared.locked(lambda: strategy.join(study, None))
                    run_trials(shared, strategy, printer, callbacks=callbacks)
                search_reads = strategy.prepared.dataset.test_split_reads
                if not interrupted and code == 0:
                    finals = strategy.final_training(study, display, url, out or Path("exports") / name)
        except KeyboardInterrupt:
            interrupted = True
    closing = strategy.finish(study, None if interrupted else finals)
    _write_study_note(study)
    return RunResult(study, url, interrupted, code, finals, closing, search_reads)


def _check_storage(url: str | None) -> None:
    """Refuse a misspelt URL, a missing folder or a database server that refuses us at once, before the data and Keras load.

    The file's contents (a damaged SQLite file or journal) are checked once, where the storage opens.
    """
    check_url(url or DEFAULT_STORAGE)
    check_folder(url or DEFAULT_STORAGE)
    check_server(url or DEFAULT_STORAGE)


def work(
    config: StudyConfig,
    *,
    started: float,
    storage_url: str | None = None,
    study_name: str | None = None,
    trials: int | None = None,
    heartbeat: int = HEARTBEAT_INTERVAL,
    grace: int = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
    verbose: int = 0,
) -> RunResult:
    """`tuner worker`: join (or create) the study and run its trials until the strategy has none left.

    `trials`: the trial quota as given on the command line (None: the
    study's, or the study file's for the first worker).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    callbacks = trial_callbacks(config)
    _check_storage(storage_url)
    strategy = choose_strategy(config, started=started, verbose=verbose, shared=True)
    me = worker_id()
    display = WorkerDisplay(me)
    printer = TrialPrinter(display, strategy)
    shared = SharedStudy(
        storage_url or DEFAULT_STORAGE,
        study_name or config.name,
        heartbeat=heartbeat,
        grace=grace,
        max_retry=max_retry,
        outage_limit=config.outage_limit,
        say=printer.say,
    )

    def setup(storage: Any) -> optuna.Study:  # under the study lock: one creator, one quota
        study = _open(config, shared, strategy, storage, seed_offset=sampler_seed_offset(f"{me}:{os.getpid()}"))
        strategy.join(study, trials)
        return study

    shared.join(setup)
    study = shared.study
    record_data_notes(study, strategy.prepared.dataset)
    printer.say(f"joined study {shared.name!r} in {mask_url(shared.url)} ({strategy.name})")
    interrupted = False
    try:
        with interrupts_end_trials():
            run_trials(shared, strategy, printer, requeue=True, callbacks=callbacks)
    except KeyboardInterrupt:
        interrupted = True
    if not interrupted:
        printer.say(strategy.done_line(study))
    return RunResult(study, storage_url, interrupted)
