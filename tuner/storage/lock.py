"""One lock per study, shared by every worker on every machine.

Workers hold it for the few milliseconds it takes to check the study's
budget and claim a trial slot (or to enqueue baselines, or to fail a dead
worker's trial and re-queue it), so two workers never take the last slot
twice and a baseline is never enqueued twice. The lock lives where the study
lives:

- PostgreSQL: a session advisory lock (`pg_advisory_lock`);
- MySQL/MariaDB: a named lock (`GET_LOCK`);
- journal or SQLite files: an exclusive `flock` on a file beside them;
- a `tuner storage-proxy` (grpc://): the proxy grants it, and holds the
  database's lock while it is granted (tuner.storage.proxy).

Each acquisition uses its own connection or file handle, so the lock is
exclusive between threads of one worker too, and a worker that dies releases
it with its connection. A connection lost while the lock is held took the
lock with it: releasing it then is a no-op, not an error (the caller's
section is retried whole, see tuner.storage.outages).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuner.storage.urls import DEFAULT_STORAGE, engine_options, file_path, grpc_address, normalize_url

_engines: dict[str, Any] = {}
_memory_lock = threading.Lock()


def _key(study_name: str) -> int:
    """A stable signed 64-bit number for the study (PostgreSQL advisory locks take one)."""
    digest = hashlib.sha256(f"tuner:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _engine(url: str) -> Any:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    if url not in _engines:
        options = {k: v for k, v in engine_options(url).items() if k != "pool_pre_ping"}
        _engines[url] = sqlalchemy.create_engine(url, poolclass=NullPool, **options)
    return _engines[url]


def _lock_file(url: str) -> Path | None:
    path = file_path(url)
    return Path(f"{path}.lock-tuner") if path else None


@contextlib.contextmanager
def study_lock(storage_url: str | None, study_name: str) -> Iterator[None]:
    """Hold the study's lock for the `with` block (blocks until it is free)."""
    import sqlalchemy
    import sqlalchemy.exc

    url = normalize_url(storage_url or DEFAULT_STORAGE)
    if url.startswith("postgresql"):
        with _engine(url).connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _key(study_name)})
            connection.commit()
            try:
                yield
            finally:
                with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _key(study_name)})
                    connection.commit()
    elif url.startswith("mysql"):
        name = f"tuner-{_key(study_name) & 0xFFFFFFFFFFFF:x}"  # MySQL lock names: 64 characters at most
        with _engine(url).connect() as connection:
            while connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, 60)"), {"name": name}).scalar() != 1:
                pass  # 60 s passed with another worker holding it: keep waiting
            try:
                yield
            finally:
                with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                    connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
    elif (address := grpc_address(url)) is not None:
        from tuner.storage.proxy import client_for

        with client_for(*address).lock(study_name):
            yield
    elif (path := _lock_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:  # an in-memory storage lives in one process
        with _memory_lock:
            yield
