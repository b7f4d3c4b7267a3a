"""A fresh database opened by many processes at once: the schema is made once and no process fails.

PostgreSQL and MariaDB are the machine's running servers; each test makes
its own throwaway database there (CREATE DATABASE with a unique name,
dropped afterwards), so the racing processes really create the schema.
SQLite and journal files are fresh files in the test's folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid

import optuna
import pytest
import sqlalchemy
from conftest import MACHINE_MARIADB, MACHINE_POSTGRES, tuner_env
from optuna.trial import TrialState

SERVERS = {"postgres": MACHINE_POSTGRES.rsplit("/", 1)[0], "mariadb": MACHINE_MARIADB.rsplit("/", 1)[0]}
TINY = ["--trials", "3", "--folds", "2", "--epochs", "1", "--subset", "300", "--baselines", "seed000-v1,seed000-v2"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

OPEN_AT = """
import sys, time
start = float(sys.argv[2])
import alembic.migration, optuna.storages, psycopg, pymysql, sqlalchemy  # imported first: the race is the opening
from tuner.storage.storages import open_storage
time.sleep(max(0.0, start - time.time()))
open_storage(sys.argv[1])
"""


def _admin(server: str):
    maintenance = "postgres" if server.startswith("postgresql") else ""
    return sqlalchemy.create_engine(
        f"{server}/{maintenance}", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


@contextlib.contextmanager
def _fresh_database(kind: str):
    """The URL of a new, empty database on the machine's PostgreSQL or MariaDB; dropped afterwards."""
    server = SERVERS[kind]
    name = f"tuner_fresh_{uuid.uuid4().hex[:10]}"
    try:
        with _admin(server).connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except Exception as error:
        pytest.skip(f"{kind} not reachable: {error}")
    try:
        yield f"{server}/{name}"
    finally:
        admin = _admin(server)
        with admin.connect() as connection:
            if server.startswith("postgresql"):  # the processes have ended, but be sure none holds it
                connection.execute(
                    sqlalchemy.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
            connection.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.fixture(params=sorted(SERVERS))
def fresh_server_db(request):
    with _fresh_database(request.param) as url:
        yield url


def _open_at_once(url: str, count: int, cwd) -> list[subprocess.CompletedProcess]:
    """`count` processes that open the storage at the same moment (once all have imported Optuna)."""
    start = str(time.time() + 8)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, url, start],
            cwd=cwd,
            env=tuner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in processes]


def _schema_rows(url: str) -> tuple[list, list]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).all()
            infos = connection.execute(sqlalchemy.text("SELECT schema_version FROM version_info")).all()
    finally:
        engine.dispose()
    return versions, infos


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgres", "mariadb", "sqlite"])
def test_processes_opening_a_fresh_database_at_once_all_succeed(tmp_path, kind):
    """Plain Optuna fails here: `Duplicate entry 'v3.2.0.a'` (MySQL), "already exists" (PostgreSQL, SQLite)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(_fresh_database(kind)) if kind in SERVERS else f"sqlite:///{tmp_path / 'fresh.db'}"
        results = _open_at_once(url, 4, tmp_path)
        assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
        versions, infos = _schema_rows(url)
        assert len(versions) == 1 and len(infos) == 1  # made once


def _start(args: list[str], cwd, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args, "--no-progress"],
        cwd=cwd,
        env=tuner_env({"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", **(env or {})}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _all_succeed(processes: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), outputs
    assert not any("Traceback" in output for output in outputs), outputs
    return outputs


def _assert_one_study_quota_met(storage, quota: int) -> list:
    assert optuna.get_all_study_names(storage) == ["digits"]
    trials = optuna.load_study(study_name="digits", storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) >= quota, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    baselines = [t.user_attrs["baseline"] for t in trials if "baseline" in t.user_attrs]
    assert sorted(baselines) == ["seed000-v1", "seed000-v2"]  # each enqueued and run once
    drawn = [repr(sorted(t.params.items())) for t in finished]
    assert len(set(drawn)) == len(drawn)  # no parameter set judged twice
    assert max(t.value for t in trials if t.state == TrialState.COMPLETE) > 0.2  # learned: chance is 0.1
    return trials


@pytest.mark.slow
def test_three_workers_on_a_fresh_server_database_share_one_quota(fresh_server_db, tmp_path):
    """Three workers started at once on an empty database: the schema and the study made once, the quota run once."""
    workers = [
        _start(["worker", "digits", "--storage", fresh_server_db, *TINY], tmp_path, {"TUNER_WORKER_ID": f"w{i}"})
        for i in range(3)
    ]
    outputs = _all_succeed(workers)
    trials = _assert_one_study_quota_met(fresh_server_db, 3)
    assert len(trials) == 3  # a shared quota: 3 in all, nothing claimed beyond it, nothing left waiting
    assert all(t.state in FINISHED and t.user_attrs["worker"] in ("w0", "w1", "w2") for t in trials)
    assert all("trial quota met: 3 of 3" in output for output in outputs), outputs
    assert optuna.load_study(study_name="digits", storage=fresh_server_db).user_attrs["trial_quota"] == 3
    versions, infos = _schema_rows(fresh_server_db)
    assert len(versions) == 1 and len(infos) == 1


@pytest.mark.slow
def test_three_workers_on_a_fresh_journal(tmp_path):
    journal = tmp_path / "runs" / "fresh.log"  # its folder does not exist yet either
    workers = [
        _start(["worker", "digits", "--storage", f"journal:///{journal}", *TINY], tmp_path, {"TUNER_WORKER_ID": f"w{i}"})
        for i in range(3)
    ]
    _all_succeed(workers)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = _assert_one_study_quota_met(storage, 3)
    assert len([t for t in trials if t.state in FINISHED]) == 3


@pytest.mark.slow
def test_two_runs_at_once_on_a_fresh_sqlite_file(tmp_path):
    """SQLite takes no `--workers`, but two `tuner run` commands on one file coordinate through the study lock."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    runs = [_start(["run", "digits", "--storage", url, *TINY], tmp_path) for _ in range(2)]
    outputs = _all_succeed(runs)
    _assert_one_study_quota_met(url, 3)
    assert all("locked" not in output.lower() for output in outputs), outputs
    assert os.path.exists(tmp_path / "fresh.db")
