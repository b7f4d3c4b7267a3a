"""Storage URLs -> Optuna storages, in one place for runs, workers, export and the dashboard.

RDB storages, journal files (tuner.storage.journal_heartbeats) and a
`tuner storage-proxy` in front of a database get worker heartbeats: a trial
whose worker died is failed after the grace period and re-queued with the
same parameters. Given `outages`, a server storage's calls
ride out a database that goes away for a while (tuner.storage.outages).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.files import disk_full
from tuner.storage import preflight
from tuner.storage.outages import Outages, ping, reason
from tuner.storage.schema import schema_lock
from tuner.storage.sqlite_errors import BUSY_TIMEOUT, sqlite_file, sqlite_problem
from tuner.storage.urls import (
    DEFAULT_STORAGE,
    engine_options,
    grpc_address,
    journal_path,
    mask_url,
    normalize_url,
)

HEARTBEAT_INTERVAL = 30  # seconds
GRACE_PERIOD = 120  # seconds without a heartbeat before a trial counts as dead
MAX_RETRY = 2


def open_storage(
    url: str | None = None,
    heartbeat: bool = True,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
    outages: Outages | None = None,
) -> Any:
    """An Optuna storage for `url` (default: sqlite:///tuner.db); one line of TunerError if it cannot be opened.

    Heartbeat settings default to HEARTBEAT_INTERVAL, GRACE_PERIOD, MAX_RETRY;
    workers pass their own (tests use short ones). With `outages`, every call
    to a database or proxy storage is retried through an outage (opening it
    is not: a wrong URL or a server that is not there fails at once).
    """
    import optuna

    given = url or DEFAULT_STORAGE
    url = normalize_url(given)
    beats = (
        heartbeat_interval or HEARTBEAT_INTERVAL,
        grace_period or GRACE_PERIOD,
        MAX_RETRY if max_retry is None else max_retry,
    )
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; we use them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = _open(url, heartbeat, beats, shown=given)
    if outages is not None and (url.startswith(("postgresql", "mysql", "sqlite")) or grpc_address(url) is not None):
        storage = outages.guard(storage)  # (SQLite has no outages: its calls only get its errors named, in one line)
    return storage


def _open(url: str, heartbeat: bool, beats: tuple[int, int, int], shown: str) -> Any:
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    preflight.check_url(url)
    preflight.check_file(url)
    try:
        journal = journal_path(url)
        if journal is not None:
            from optuna.storages.journal import JournalFileBackend

            Path(journal).parent.mkdir(parents=True, exist_ok=True)
            if not heartbeat:
                return optuna.storages.JournalStorage(JournalFileBackend(journal))
            from tuner.storage.journal_heartbeats import JournalHeartbeats

            return JournalHeartbeats(
                JournalFileBackend(journal), journal, beats[0], beats[1], RetryHeartbeatStaleTrialCallback(beats[2])
            )
        address = grpc_address(url)
        if address is not None:
            from tuner.storage.proxy import open_proxy_storage

            return open_proxy_storage(*address, heartbeat=heartbeat, beats=beats, shown=mask_url(shown))
        kwargs: dict[str, Any] = {}
        if heartbeat:
            kwargs = dict(
                heartbeat_interval=beats[0],
                grace_period=beats[1],
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=beats[2]),
            )
        options = engine_options(url)
        if sqlite_file(url) is not None:  # wait this long for another process's write, then say "locked"
            options = {**options, "connect_args": {**options.get("connect_args", {}), "timeout": BUSY_TIMEOUT}}
        return _rdb_storage(url, options, kwargs)
    except TunerError:
        raise
    except Exception as error:  # SQLAlchemy and drivers raise many types; all mean "unusable URL"
        raise _unusable(error, url, shown) from None


def check_server(url: str) -> None:
    """A database server's URL reaches it and logs in (one query on a fresh connection, no table made); others pass.

    The run checks this before it loads the data and Keras, so a wrong
    password or a missing database is answered in a second, not after ten.
    """
    given, url = url, normalize_url(url)
    if not url.startswith(("postgresql", "mysql")):
        return
    try:
        ping(url)
    except Exception as error:
        raise _unusable(error, url, given) from None


def _unusable(error: Exception, url: str, shown: str) -> TunerError:
    """The one line for a storage that cannot be opened: a missing client library, SQLite's problem, a full disk, or why."""
    if isinstance(error, ModuleNotFoundError):
        if url.startswith("grpc"):
            extra = "grpc"
        else:
            extra = "postgres" if "psycopg" in str(error) or "postgres" in url else "mysql"
        return TunerError(
            f"storage {mask_url(shown)}: the client library is missing ({error.name}); run 'pip install tuner[{extra}]'"
        )
    if (problem := sqlite_problem(error, url)) is not None:
        return problem
    if disk_full(error):
        return TunerError(
            f"no space left on the device for storage {mask_url(shown)}; free some space, or use another --storage"
        )
    return TunerError(
        f"cannot open storage {mask_url(shown)}: {reason(error, url)}; check the URL, the server and the credentials"
    )


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], kwargs: dict[str, Any], attempts: int = 5) -> Any:
    """RDBStorage, opened under the schema lock so that one process creates a fresh database's tables.

    The lock (tuner.storage.schema) makes the others wait and then find the
    schema whole. Should a process open without it (the lock not had in
    time, or an older tuner or plain Optuna creating the same schema), a
    race it loses -- "already exists", a duplicate key, a unique constraint
    -- is retried: by then the winner has made what it tried to make.
    """
    import optuna

    for attempt in range(attempts):
        try:
            with schema_lock(url):
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as error:
            if not _lost_schema_race(error) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _lost_schema_race(error: BaseException) -> bool:
    """Whether `error` says another process made the table, type or row this one was making."""
    import sqlalchemy.exc

    text = str(error)
    return isinstance(error, sqlalchemy.exc.IntegrityError) or any(
        words in text for words in ("already exists", "Duplicate entry", "duplicate key", "UNIQUE constraint failed")
    )


def artifact_store(url: str | None = None) -> Any:
    """Optuna's file-system artifact store beside the storage (tuner.storage.urls.artifact_dir), created if needed."""
    from optuna.artifacts import FileSystemArtifactStore

    from tuner.storage.urls import artifact_dir

    directory = artifact_dir(url)
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(directory))
