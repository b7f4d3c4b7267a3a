"""SQLite's own errors are named in one line, never waited out as a server outage.

"Locked" is a real exclusive transaction held by the test (`BEGIN
EXCLUSIVE` in a sqlite3 connection) for longer than the busy timeout; "disk
full" is a real 256 KiB tmpfs filled to the brim.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import optuna
import pytest
from conftest import assert_one_line_error, fill, run_tuner, tuner_env

from tuner.core.errors import TunerError
from tuner.storage.optuna_compat import rdb_backend
from tuner.storage.outages import Outages, StorageOutage
from tuner.storage.sqlite_errors import BUSY_TIMEOUT
from tuner.storage.storages import open_storage


@pytest.fixture
def study_file(tmp_path):
    """A SQLite file holding a study with one running trial."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="digits", storage=url, direction="maximize")
    study.ask()
    return url, tmp_path / "study.db"


class ExclusiveHold:
    """An exclusive SQLite transaction on `path`, held for the `with` block (what a backup or a shell can do)."""

    def __init__(self, path):
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def __enter__(self):
        self.connection.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc):
        self.connection.execute("ROLLBACK")
        self.connection.close()


@pytest.mark.slow
def test_a_locked_file_is_one_line_after_the_busy_timeout_not_an_outage(study_file):
    url, path = study_file
    said = []
    outages = Outages(url, limit=300, say=said.append)
    storage = open_storage(url, outages=outages)
    with ExclusiveHold(path):
        started = time.monotonic()
        with pytest.raises(TunerError) as raised:
            storage.set_trial_user_attr(1, "worker", "me")
        waited = time.monotonic() - started
    message = str(raised.value)
    assert not isinstance(raised.value, StorageOutage)
    assert BUSY_TIMEOUT - 1 < waited < BUSY_TIMEOUT + 8  # SQLite's own wait, once: no retries for 300 s
    assert "\n" not in message and f"SQLite file {path} is locked" in message and "journal:///" in message
    assert said == []  # never announced as "unreachable; retrying"
    storage.set_trial_user_attr(1, "worker", "me")  # free again: the same storage works
    assert optuna.load_study(study_name="digits", storage=url).trials[0].user_attrs == {"worker": "me"}


def test_a_lock_held_briefly_is_waited_for(study_file):
    """Two tuner commands on one file: one's short write makes the other wait, not fail."""
    url, path = study_file
    storage = open_storage(url, outages=Outages(url, limit=300, say=lambda text: None))
    hold = ExclusiveHold(path).__enter__()
    threading.Timer(2, hold.__exit__).start()
    started = time.monotonic()
    storage.set_trial_user_attr(1, "worker", "me")
    assert 1.5 < time.monotonic() - started < BUSY_TIMEOUT


@pytest.mark.slow
def test_tuner_on_a_locked_file_says_so_in_one_line(study_file, tmp_path):
    url, path = study_file
    with ExclusiveHold(path):
        started = time.monotonic()
        result = run_tuner("run", "digits", "--trials", "1", "--storage", url, "--no-progress", cwd=tmp_path, timeout=200)
        took = time.monotonic() - started
    assert_one_line_error(result, f"SQLite file {path} is locked", "more than 10s")
    assert took < 120, took  # not the outage limit's 300 s


@pytest.mark.slow
def test_a_lock_taken_mid_run_ends_it_in_one_line(study_file, tmp_path):
    url, path = study_file
    run = subprocess.Popen(
        [sys.executable, "-m", "tuner", "run", "digits", "--trials", "4", "--folds", "2", "--epochs", "3",
         "--subset", "300", "--storage", url, "--no-progress", "--study-name", "mid"],
        cwd=tmp_path, env=tuner_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def running() -> bool:
        study = optuna.load_study(study_name="mid", storage=url)
        return any(t.state == optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False))

    from polling import wait_for

    wait_for(running, timeout=300, what="a running trial")
    with ExclusiveHold(path):
        started = time.monotonic()
        out, err = run.communicate(timeout=200)
        took = time.monotonic() - started
    lines = [line for line in err.splitlines() if line.strip()]
    assert run.returncode == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"SQLite file {path} is locked" in lines[0]
    assert "unreachable" not in out + err and took < 120


def test_a_full_disk_under_the_file_is_one_line_not_an_outage(small_disk):
    url = f"sqlite:///{small_disk / 'study.db'}"
    said = []
    storage = open_storage(url, heartbeat=False, outages=Outages(url, limit=300, say=said.append))
    try:
        study = optuna.create_study(study_name="digits", storage=storage, direction="maximize")
        trial_id = study.ask()._trial_id
        fill(small_disk)  # the file cannot grow
        started = time.monotonic()
        with pytest.raises(TunerError) as raised:
            for index in range(200):  # until the file must grow
                storage.set_trial_user_attr(trial_id, f"note{index}", "x" * 2000)
        assert time.monotonic() - started < 30
    finally:
        rdb_backend(storage).engine.dispose()  # its open file would keep the tmpfs busy
    message = str(raised.value)
    assert "\n" not in message and not isinstance(raised.value, StorageOutage)
    assert message.startswith(f"no space left on the device for SQLite file {small_disk / 'study.db'}")
    assert said == []
