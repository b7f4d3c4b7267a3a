"""A worker: join (or create) a study and run its trials until the study's budget is met.

The study's side of it (lock, budget, heartbeats, reaping, outages) is
tuner.distributed.shared_study; this module trains: claim -> train -> tell,
until the shared budget is met. A database outage longer than the study's
`outage_limit` ends the worker with one line and exit status 2, its trial
left RUNNING for the heartbeat to fail and re-queue.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.core import interrupt, record
from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.distributed.shared_study import SharedStudy, settle_budget, worker_id
from tuner.search.budget_search import BudgetSearch, stored_search
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.study import enqueue_baselines, open_study, prepare, record_data_notes
from tuner.storage.outages import StorageOutage, reason
from tuner.storage.storages import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY
from tuner.storage.urls import DEFAULT_STORAGE, mask_url

MAX_CONSECUTIVE_ERRORS = 3
WAIT_POLL = 5  # seconds between looks at the study while the last slots run elsewhere


def seed_offset(worker: str) -> int:
    """Each worker samples with its own seed; with the study's seed alone all would suggest the same trials."""
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:3], "big")


class Worker:
    """One worker process's loop over claim -> train -> tell."""

    def __init__(
        self,
        config: StudyConfig,
        storage_url: str | None,
        study_name: str | None,
        budget: int | None = None,
        heartbeat: int = HEARTBEAT_INTERVAL,
        grace: int = GRACE_PERIOD,
        max_retry: int = MAX_RETRY,
        verbose: int = 0,
    ):
        self.config, self.requested, self.verbose = config, budget, verbose
        self.id = worker_id()
        self.shared = SharedStudy(
            storage_url or DEFAULT_STORAGE,
            study_name or config.name,
            heartbeat=heartbeat,
            grace=grace,
            max_retry=max_retry,
            outage_limit=config.outage_limit,
            say=self.say,
        )

    def say(self, text: str) -> None:
        print(f"[{self.id}] {text}", flush=True)

    @property
    def study(self) -> optuna.Study:
        return self.shared.study

    def join(self) -> None:
        prepared = prepare(self.config, self.verbose)  # checks the data and the space before the study
        self.objective: Callable[[optuna.Trial], Any] = prepared.objective
        self.search: BudgetSearch | None = None

        def setup(storage: Any) -> tuple[optuna.Study, int]:  # under the study lock: one creator, one budget
            study = open_study(
                self.config,
                self.shared.url,
                self.shared.name,
                storage=storage,
                seed_offset=seed_offset(f"{self.id}:{os.getpid()}"),
            )
            if self.config.budget is not None:  # a time budget: follow the plan the run stored on the study
                self.search = self.objective = stored_search(prepared, study)
                return study, 0
            budget = settle_budget(study, self.requested, self.config.trials)
            enqueue_baselines(study, self.config, prepared.dataset, prepared.space)
            return study, budget

        self.shared.join(setup)
        record_data_notes(self.study, prepared.dataset)

    def train(self, trial: optuna.Trial) -> tuple[Any, TrialState]:
        """The objective's value and the trial's state; an outage past the limit is not the trial's failure."""
        try:
            return self.objective(trial), TrialState.COMPLETE
        except optuna.TrialPruned:
            return None, TrialState.PRUNED
        except StorageOutage:
            raise
        except Exception as error:
            self.say(f"trial {trial.number} failed: {type(error).__name__}: {reason(error, self.shared.url)}")
            return None, TrialState.FAIL

    def run_trial(self, trial: optuna.Trial) -> TrialState:
        started = time.time()
        try:
            with self.shared.beating(trial):
                value, state = self.train(trial)
        except KeyboardInterrupt:
            self.shared.give_back(trial)
            self.say(f"trial {trial.number} interrupted: marked FAIL and re-queued for another worker")
            raise
        frozen = self.shared.tell(trial, value, state)
        if frozen is None:
            self.say(f"trial {trial.number} was failed as stale by another worker; its retry will count instead")
            return TrialState.FAIL
        shown = "" if frozen.values is None else " ".join(f"{v:.4f}" for v in frozen.values)
        stored = record.TrialRecord.of(frozen)
        extra = f"{stored.baseline or stored.portfolio or ''} {stored.stopped or ''}".strip()
        self.say(f"trial {trial.number} {state.name} {shown} {time.time() - started:.1f}s {extra}".rstrip())
        return state

    def run(self) -> bool:
        """Run trials until the budget is met; True when interrupted (Ctrl-C, SIGTERM)."""
        self.join()
        shared = "a time budget's plan" if self.search else f"budget {self.shared.budget} trials"
        self.say(f"joined study {self.shared.name!r} in {mask_url(self.shared.url)} ({shared})")
        errors, started = 0, time.time()
        try:
            with interrupts_end_trials():
                while True:
                    if self.config.timeout and time.time() - started > self.config.timeout:
                        self.say(f"--timeout {self.config.timeout:g}s reached: no more trials from this worker")
                        return False
                    interrupt.check()
                    claimed = self.shared.claim(self.search.next_job if self.search else None)
                    if claimed is None:
                        break
                    if isinstance(claimed, str):  # "wait": the last slots are running elsewhere: wait, reaping dead ones
                        time.sleep(min(self.shared.heartbeat, WAIT_POLL))
                        continue
                    state = self.run_trial(claimed)
                    errors = errors + 1 if state == TrialState.FAIL else 0
                    if errors >= MAX_CONSECUTIVE_ERRORS:
                        raise TunerError(
                            f"{errors} trials in a row failed with errors; see the messages above and fix the cause"
                        )
        except KeyboardInterrupt:
            return True
        finished, _ = self.shared.counts()
        if self.search is not None:
            self.say(f"the search's time is up: {finished} trials finished")
        else:
            self.say(f"budget met: {finished} of {self.shared.budget} trials finished")
        return False


def run_worker(
    config: StudyConfig,
    storage_url: str | None,
    study_name: str | None,
    budget: int | None,
    heartbeat: int,
    grace: int,
    max_retry: int,
    verbose: int = 0,
) -> tuple[optuna.Study, bool]:
    """Join the study and run trials until its budget is met; returns the study and whether it was interrupted."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    worker = Worker(config, storage_url, study_name, budget, heartbeat, grace, max_retry, verbose)
    interrupted = worker.run()
    return worker.study, interrupted
