"""A worker: join (or create) a study and run its trials until the study's budget is met.

Any number of workers, on any number of machines, share one study through
one storage. The budget is the study's, not the worker's: it is stored in the
study when the study is created (user attribute `budget`), and counts the
trials that finished (COMPLETE or PRUNED). Before a trial starts, its worker
claims a slot under the study lock (tuner.study_lock): the claim succeeds only
while finished + running trials are below the budget, so N workers asked for
40 trials run 40 in all.

Crash safety: a running trial beats (RDB heartbeats); a trial whose worker
stopped beating for the grace period is failed and re-queued with the same
parameters (Optuna's RetryHeartbeatStaleTrialCallback), up to a retry limit.
Surviving workers reap such trials whenever they claim, while they wait, and
from their own heartbeat thread, so a dead worker's trial is failed within the
grace period plus one heartbeat even while everyone else is busy training.
Journal and SQLite files have no heartbeats: there a worker reaps trials
whose worker process, on this machine, no longer exists.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.core import interrupt, record
from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.search.budget_search import BudgetSearch, stored_search
from tuner.search.interrupts import interrupts_end_trials
from tuner.search.study import enqueue_baselines, open_study, prepare, record_data_notes
from tuner.storage.lock import study_lock
from tuner.storage.optuna_compat import heartbeat_enabled, trial_id_of
from tuner.storage.storages import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, open_storage
from tuner.storage.urls import DEFAULT_STORAGE, mask_url

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_CONSECUTIVE_ERRORS = 3
WAIT_POLL = 5  # seconds between looks at the study while the last slots run elsewhere


def worker_id() -> str:
    """Who runs a trial (trial user attribute `worker`): $TUNER_WORKER_ID, else host:pid."""
    return os.environ.get("TUNER_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"


def seed_offset(worker: str) -> int:
    """Each worker samples with its own seed; with the study's seed alone all would suggest the same trials."""
    import hashlib

    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:3], "big")


def settle_budget(study: optuna.Study, requested: int | None, default: int) -> int:
    """The study's shared budget: stored by the first worker, the same for every later one."""
    stored = study.user_attrs.get("budget")
    if stored is None:
        budget = requested or default
        study.set_user_attr("budget", budget)
        return budget
    if requested is not None and requested != stored:
        raise TunerError(
            f"study {study.study_name!r} has a budget of {stored} trials shared by its workers; "
            f"pass --trials {stored} or leave --trials out to join it"
        )
    return stored


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if heartbeat < 1 or grace <= heartbeat:
            raise TunerError(f"--grace ({grace}) must be longer than --heartbeat ({heartbeat}), both whole seconds >= 1")
        self.config, self.url, self.name = config, storage_url or DEFAULT_STORAGE, study_name or config.name
        self.requested, self.heartbeat, self.max_retry, self.verbose = budget, heartbeat, max_retry, verbose
        self.id = worker_id()
        self.storage = open_storage(self.url, heartbeat_interval=heartbeat, grace_period=grace, max_retry=max_retry)
        self.beats = heartbeat_enabled(self.storage)

    def say(self, text: str) -> None:
        print(f"[{self.id}] {text}", flush=True)

    # -- the study, under its lock -------------------------------------------------

    def join(self) -> None:
        prepared = prepare(self.config, self.verbose)  # checks the data and the space before the study
        self.objective: Callable[[optuna.Trial], Any] = prepared.objective
        self.search: BudgetSearch | None = None
        with study_lock(self.url, self.name):  # one creator, one set of baselines, one budget
            self.study = open_study(
                self.config, self.url, self.name, storage=self.storage, seed_offset=seed_offset(f"{self.id}:{os.getpid()}")
            )
            if self.config.budget is not None:  # a time budget: follow the plan the run stored on the study
                self.search = self.objective = stored_search(prepared, self.study)
                self.budget = 0
            else:
                self.budget = settle_budget(self.study, self.requested, self.config.trials)
                enqueue_baselines(self.study, self.config, prepared.dataset, prepared.space)
        record_data_notes(self.study, prepared.dataset)

    def _counts(self) -> tuple[int, int]:
        trials = self.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        finished = sum(t.state in FINISHED for t in trials)
        return finished, len(trials) - finished

    def _requeue(self, trial: optuna.trial.FrozenTrial) -> None:
        """The same parameters once more, as a WAITING trial (Optuna's retry callback, with its limit)."""
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        trial.user_attrs.pop(record.STOPPED, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)(self.study, trial)

    def _reap(self) -> None:
        """Fail (and re-queue) the trials of dead workers; call under the study lock."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self.beats:
                optuna.storages.fail_stale_trials(self.study)
                return
        host = socket.gethostname()
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(record.TrialRecord.of(trial).worker or "")
            owner_host, _, pid = owner.rpartition(":")
            dead = owner_host == host and pid.isdigit() and not _pid_alive(int(pid))
            if dead and self.storage.set_trial_state_values(trial_id_of(trial), state=TrialState.FAIL):
                self._requeue(self.storage.get_trial(trial_id_of(trial)))

    def reap(self) -> None:
        with study_lock(self.url, self.name):
            self._reap()

    def claim(self) -> optuna.Trial | str | None:
        """A new RUNNING trial, or "wait" (all slots taken by running trials), or None (budget met)."""
        with study_lock(self.url, self.name):
            self._reap()
            if self.search is not None:  # a time budget: the plan says what runs next, or that nothing fits
                if not self.search.next_job(self.study):
                    return None
            else:
                finished, running = self._counts()
                if finished >= self.budget:
                    return None
                if finished + running >= self.budget:
                    return "wait"
            with warnings.catch_warnings():  # Optuna expects heartbeats from optimize(); ours beat the same way
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = self.study.ask()
            if self.beats:
                self.storage.record_heartbeat(trial_id_of(trial))
            trial.set_user_attr(record.WORKER, self.id)
            return trial

    # -- one trial ------------------------------------------------------------------

    def _beat(self, trial_id: int, stop: threading.Event) -> None:
        """Heartbeats for our trial, and reaping of others' dead ones, until `stop`."""
        while not stop.wait(self.heartbeat):
            try:
                if self.beats:
                    self.storage.record_heartbeat(trial_id)
                self.reap()
            except Exception as error:  # a lost connection must not kill the training; say it and go on
                self.say(f"heartbeat failed: {mask_url(str(error).splitlines()[0] if str(error) else repr(error))}")

    def run_trial(self, trial: optuna.Trial) -> TrialState:
        stop = threading.Event()
        beating = threading.Thread(target=self._beat, args=(trial_id_of(trial), stop), daemon=True)
        beating.start()
        value, state, started = None, TrialState.COMPLETE, time.time()
        try:
            value = self.objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except KeyboardInterrupt:
            stop.set()
            beating.join()
            self.study.tell(trial, state=TrialState.FAIL)
            with study_lock(self.url, self.name):
                self._requeue(self.storage.get_trial(trial_id_of(trial)))
            self.say(f"trial {trial.number} interrupted: marked FAIL and re-queued for another worker")
            raise
        except Exception as error:
            state = TrialState.FAIL
            self.say(f"trial {trial.number} failed: {type(error).__name__}: {error}")
        finally:
            stop.set()
            beating.join()
        try:
            frozen = self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        except Exception:  # another worker failed it: no heartbeat for the grace period
            self.say(f"trial {trial.number} was failed as stale by another worker; its retry will count instead")
            return TrialState.FAIL
        shown = "" if frozen.values is None else " ".join(f"{v:.4f}" for v in frozen.values)
        stored = record.TrialRecord.of(frozen)
        extra = f"{stored.baseline or ''} {stored.stopped or ''}".strip()
        self.say(f"trial {trial.number} {state.name} {shown} {time.time() - started:.1f}s {extra}".rstrip())
        return state

    def run(self) -> bool:
        """Run trials until the budget is met; True when interrupted (Ctrl-C, SIGTERM)."""
        self.join()
        shared = "a time budget's plan" if self.search else f"budget {self.budget} trials"
        self.say(f"joined study {self.name!r} in {mask_url(self.url)} ({shared})")
        errors, started = 0, time.time()
        try:
            with interrupts_end_trials():
                while True:
                    if self.config.timeout and time.time() - started > self.config.timeout:
                        self.say(f"--timeout {self.config.timeout:g}s reached: no more trials from this worker")
                        return False
                    interrupt.check()
                    claimed = self.claim()
                    if claimed is None:
                        break
                    if isinstance(claimed, str):  # "wait": the last slots are running elsewhere: wait, reaping dead ones
                        time.sleep(min(self.heartbeat, WAIT_POLL))
                        continue
                    state = self.run_trial(claimed)
                    errors = errors + 1 if state == TrialState.FAIL else 0
                    if errors >= MAX_CONSECUTIVE_ERRORS:
                        raise TunerError(
                            f"{errors} trials in a row failed with errors; see the messages above and fix the cause"
                        )
        except KeyboardInterrupt:
            return True
        finished, _ = self._counts()
        if self.search is not None:
            self.say(f"the search's time is up: {finished} trials finished")
        else:
            self.say(f"budget met: {finished} of {self.budget} trials finished")
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
