"""Heartbeats for a journal file's trials: one small file per running trial, beside the journal.

Optuna's journal storage has no heartbeats, so a worker could only tell a
dead worker's trial by its process on this host: a worker on another host
sharing the file (NFS), or a pid since reused, left its trial RUNNING for
ever. Here the beating thread touches `FILE.log.heartbeats/TRIAL_ID`, and a
RUNNING trial whose file is older than the grace period is stale, as a
database's heartbeat would be (tuner.distributed.shared_study reaps it).
Touches are not journal records, so the journal does not grow with them.

Ages are read on the file system's clock, not this host's: "now" is the
time of a file touched just before, so hosts whose clocks differ agree.
A RUNNING trial with no file at all (its claim was cut short) counts from
its start. Files of finished trials are removed as stale ones are sought.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import FrozenTrial, TrialState

from tuner.storage.optuna_compat import BaseHeartbeat, trial_id_of


def heartbeat_dir(journal: str | Path) -> Path:
    """The folder of the journal's heartbeat files."""
    return Path(f"{journal}.heartbeats")


class JournalHeartbeats(optuna.storages.JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with heartbeats kept in files beside the journal."""

    def __init__(
        self,
        backend: BaseJournalBackend,
        journal: str | Path,
        interval: int,
        grace: int,
        stale_callback: Callable[[optuna.Study, FrozenTrial], None] | None,
    ):
        super().__init__(backend)
        self._folder, self._interval, self._grace = heartbeat_dir(journal), interval, grace
        self._stale_callback = stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Record that the trial's worker is alive: touch its file."""
        self._touch(self._folder / str(trial_id))

    def _touch(self, path: Path) -> float:
        """Touch `path` (made if missing); its new time on the file system's clock."""
        self._folder.mkdir(parents=True, exist_ok=True)
        path.touch()
        return path.stat().st_mtime

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id, self._grace)

    def stale_trial_ids(self, study_id: int, grace: float) -> list[int]:
        """Ids of the study's RUNNING trials whose heartbeat file is older than `grace` seconds."""
        now = self._touch(self._folder / ".now")
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        stale = []
        for trial in running:
            try:
                beat = (self._folder / str(trial_id_of(trial))).stat().st_mtime
            except FileNotFoundError:  # never beat: count from its start, on this host's clock
                started = trial.datetime_start or datetime.datetime.now()
                beat = now - (datetime.datetime.now() - started).total_seconds()
            if now - beat > grace:
                stale.append(trial_id_of(trial))
        self._remove_finished(study_id, {trial_id_of(trial) for trial in running})
        return stale

    def _remove_finished(self, study_id: int, running: set[int]) -> None:
        finished = {
            trial_id_of(trial)
            for trial in self.get_all_trials(study_id, deepcopy=False)
            if trial.state.is_finished() and trial_id_of(trial) not in running
        }
        for name in os.listdir(self._folder):
            if name.isdigit() and int(name) in finished:
                (self._folder / name).unlink(missing_ok=True)

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between heartbeats."""
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        """What to do with a stale trial once failed (re-queue it)."""
        return self._stale_callback
