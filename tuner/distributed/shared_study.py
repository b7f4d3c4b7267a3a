"""One study shared by workers: its lock, claims, its trials' heartbeats, dead workers' trials, outages.

Any number of workers, on any number of machines (and a run in one
process, which is one worker), share one study through one storage. Before
a trial starts, its worker claims it under the study lock
(tuner.storage.lock): the search strategy says, under the lock, whether to
run a trial, wait or stop (tuner.search.strategy), so two workers never take
the last slot or the same promotion twice.

Crash safety: a running trial beats (heartbeats); a trial whose worker
stopped beating for the grace period is failed and re-queued with the same
parameters (Optuna's RetryHeartbeatStaleTrialCallback), up to a retry limit.
Workers reap such trials from their heartbeat thread, while they wait, and
when a claim finds every slot taken, so a dead worker's trial is failed
within the grace period plus one heartbeat even while everyone else is busy
training. A journal file's heartbeats are small files beside it
(tuner.storage.journal_heartbeats), so a worker on another host sharing it,
or one whose pid was reused, is judged by its heartbeat too; on journal and
SQLite files a trial whose worker process ran on this host and has ended is
reaped at once, without waiting for the grace period.

Outages: every storage call is retried while the database is unreachable
(tuner.storage.outages), each locked section as a whole. A trial whose claim
an outage cut short (asked, but no worker recorded on it) is reaped like a
dead worker's. Right after an outage every heartbeat looks old, so nobody
reaps until live workers have had the time to beat again; the same holds
after a stall (a database that froze, then answered late), and a heartbeat
is judged by the grace period plus the time this process itself saw nothing
of the database. Heartbeat threads beat first and reap only when the study
lock is free at once: a heartbeat never waits behind a claim.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from tuner.core import record
from tuner.core.errors import TunerError
from tuner.core.settings import OUTAGE_LIMIT
from tuner.search.strategy import Job
from tuner.storage.lock import study_lock, try_study_lock
from tuner.storage.optuna_compat import heartbeat_enabled, heartbeat_stale_ids, study_id_of, trial_id_of
from tuner.storage.outages import LONGEST_PAUSE, Outages, StorageOutage
from tuner.storage.storages import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, open_storage
from tuner.storage.urls import file_path, mask_url, normalize_url

T = TypeVar("T")


def worker_id() -> str:
    """Who runs a trial (trial user attribute `worker`): $TUNER_WORKER_ID, else host:pid."""
    return os.environ.get("TUNER_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"


def sampler_seed_offset(worker: str) -> int:
    """Each worker samples with its own seed; with the study's seed alone all would suggest the same trials."""
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:3], "big")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _died_here(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial's worker (`host:pid`) ran on this host and its process has ended."""
    owner_host, _, pid = str(record.TrialRecord.of(trial).worker or "").rpartition(":")
    return owner_host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


class SharedStudy:
    """A worker's handle on the shared study: join, claim, beat, reap, tell."""

    study: optuna.Study

    def __init__(
        self,
        url: str,
        name: str,
        *,
        heartbeat: int = HEARTBEAT_INTERVAL,
        grace: int = GRACE_PERIOD,
        max_retry: int = MAX_RETRY,
        outage_limit: float = OUTAGE_LIMIT,
        say: Callable[[str], None] = print,
    ):
        if heartbeat < 1 or grace <= heartbeat:
            raise TunerError(f"--grace ({grace}) must be longer than --heartbeat ({heartbeat}), both whole seconds >= 1")
        self.url, self.name, self.say = url, name, say
        self.heartbeat, self.grace, self.max_retry = heartbeat, grace, max_retry
        self.id = worker_id()
        self.outages = Outages(url, outage_limit, say, stall=max(1.0, (grace - heartbeat) / 2))
        self.storage = open_storage(
            url, heartbeat_interval=heartbeat, grace_period=grace, max_retry=max_retry, outages=self.outages
        )
        self.beats = heartbeat_enabled(self.storage)

    def locked(self, section: Callable[[], T]) -> T:
        """`section()` under the study lock; an outage restarts it whole, the lock taken again."""

        def attempt() -> T:
            with study_lock(self.url, self.name):
                return section()

        return self.outages.retrying(attempt)

    def join(self, setup: Callable[[Any], optuna.Study]) -> None:
        """Open or create the study under its lock: `setup(storage)` returns it (one creator)."""
        self.study = self.locked(lambda: setup(self.storage))

    # -- claiming, and giving back --------------------------------------------------

    def claim(self, next_job: Callable[[optuna.Study], Job]) -> optuna.Trial | Job:
        """A new RUNNING trial, or Job.WAIT (every slot taken by running trials), or Job.DONE.

        `next_job` is the strategy's: it enqueues (or leaves to the sampler)
        what runs next, or says wait or done. Before a wait, the trials that
        hold the slots are checked for live workers (otherwise the heartbeat
        threads reap, and claims stay short: they queue for the lock).
        """

        def section() -> optuna.Trial | Job:
            job = next_job(self.study)
            if job is Job.WAIT:
                self._reap()
                job = next_job(self.study)
            return self._ask() if job is Job.RUN else job

        return self.locked(section)

    def _ask(self) -> optuna.Trial:
        """A new RUNNING trial, beating and signed by this worker; call under the lock."""
        with warnings.catch_warnings():  # Optuna expects heartbeats from optimize(); ours beat the same way
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self.study.ask()
        if self.beats:
            self.storage.record_heartbeat(trial_id_of(trial))
        trial.set_user_attr(record.WORKER, self.id)  # last: a trial without it is an orphan (see _reap)
        return trial

    def tell(self, trial: optuna.Trial, value: Any, state: TrialState) -> optuna.trial.FrozenTrial | None:
        """Finish our trial; None when another worker failed it first (no heartbeat for the grace period).

        Through an outage the storage retries until the database is back, so
        the result is told again, not lost. "Already finished" is read from
        the stored trial: our own earlier attempt may have landed just as the
        connection broke.
        """
        try:
            return self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as error:
            stored = self.storage.get_trial(trial_id_of(trial))
            if stored.state == TrialState.RUNNING:  # not "already finished": Optuna refused the values (NaN...)
                self.say(f"trial {trial.number}: {error}; marked FAIL")
                return self.study.tell(trial, state=TrialState.FAIL)
            return stored if stored.state == state else None

    def give_back(self, trial: optuna.Trial) -> None:
        """Fail our trial and re-queue it for another worker (Ctrl-C, SIGTERM)."""
        if self.tell(trial, None, TrialState.FAIL) is not None:
            self.locked(lambda: self._requeue(self.storage.get_trial(trial_id_of(trial))))

    # -- heartbeats and dead workers' trials ---------------------------------------

    @contextlib.contextmanager
    def beating(self, trial: optuna.Trial) -> Iterator[None]:
        """For the `with` block: heartbeats of `trial`, and reaping of others' dead trials, from a thread."""
        stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(trial_id_of(trial), stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _beat(self, trial_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat):
            try:
                if self.beats:
                    self.storage.record_heartbeat(trial_id)  # first, and never behind the study lock
                self.reap()
            except StorageOutage:
                return  # the trial's own thread meets it at its next call and ends the worker
            except Exception as error:  # never kill the training over a heartbeat; say it and go on
                self.say(f"heartbeat failed: {mask_url(str(error).splitlines()[0] if str(error) else repr(error))}")

    def reap(self) -> None:
        """Fail (and re-queue) the trials of dead workers if the study lock is free now: never waits for it.

        Heartbeat threads call it; a claim that holds the lock reaps itself
        when it finds every slot taken.
        """
        if self._just_back():
            return

        def attempt() -> None:
            with try_study_lock(self.url, self.name) as held:
                if held:
                    self._reap()

        self.outages.retrying(attempt)

    def _just_back(self) -> bool:
        """Whether an outage or a stall of the database ended too recently for live workers to have beaten since."""
        return self.outages.seconds_since_back() < self.heartbeat + 2 * LONGEST_PAUSE

    def _reap(self) -> None:
        if self._just_back():
            return  # just after an outage every heartbeat looks old: live workers are still in their retry pause
        grace = self.grace
        on_file = file_path(normalize_url(self.url)) is not None
        if not on_file:
            # A heartbeat in a database server is judged by the grace period plus the time this process saw
            # nothing of the server: a stall in that time, unseen here, kept live workers from beating as long.
            unseen = self.outages.unobserved()
            if unseen == float("inf"):
                return
            grace += math.ceil(unseen)
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        stale = set(heartbeat_stale_ids(self.storage, study_id_of(self.study), grace)) if self.beats else set()
        if on_file:  # the fast path: a worker on this host whose process ended
            stale |= {trial_id_of(t) for t in running if _died_here(t)}
        dead = [t for t in running if trial_id_of(t) in stale]
        if self.beats:
            dead += self._orphans([t for t in running if trial_id_of(t) not in stale], grace)
        for trial in dead:
            self._fail_and_requeue(trial)

    def _orphans(self, running: list[optuna.trial.FrozenTrial], grace: float) -> list[optuna.trial.FrozenTrial]:
        """Trials asked for, then abandoned before a worker was recorded on them (an outage cut the claim short).

        Nobody beats for them, so heartbeats never find them. Every live trial
        has a worker (workers) or a spec (`tuner run`) within seconds.
        """
        now = datetime.datetime.now()
        return [
            trial
            for trial in running
            if record.WORKER not in trial.user_attrs
            and record.SPEC not in trial.user_attrs
            and trial.datetime_start is not None
            and (now - trial.datetime_start).total_seconds() > grace
        ]

    def _fail_and_requeue(self, trial: optuna.trial.FrozenTrial) -> None:
        try:
            failed = self.storage.set_trial_state_values(trial_id_of(trial), state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return  # another worker failed it first
        if failed:
            owner = record.TrialRecord.of(trial).worker or "no worker"
            self.say(f"trial {trial.number} ({owner}) has no live worker: failed, and re-queued")
            self._requeue(self.storage.get_trial(trial_id_of(trial)))

    def _requeue(self, trial: optuna.trial.FrozenTrial) -> None:
        """The same parameters once more, as a WAITING trial (Optuna's retry callback, with its limit)."""
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        trial.user_attrs.pop(record.STOPPED, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)(self.study, trial)
