"""One lock per study, shared by every worker on every machine.

Workers hold it for the few milliseconds it takes to check the study's
budget and claim a trial slot (or to enqueue baselines, or to fail a dead
worker's trial and re-queue it), so two workers never take the last slot
twice and a baseline is never enqueued twice. The lock lives where the study
lives:

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`, polled);
- MySQL/MariaDB: a named lock (`GET_LOCK` a second at a time);
- journal or SQLite files: an exclusive `flock` on a file beside them (polled);
- a `tuner storage-proxy` (grpc://): the proxy grants it, and holds the
  database's lock while it is granted (tuner.storage.proxy).

Each acquisition uses its own connection or file handle, so the lock is
exclusive between threads of one worker too, and a worker that dies releases
it with its connection. A connection lost while the lock is held took the
lock with it: releasing it then is a no-op, not an error (the caller's
section is retried whole, see tuner.storage.outages).

No wait is unbounded: a lock not free within LOCK_WAIT seconds raises
LockTimeout, an outage like a frozen database (each poll is a statement
with its own timeout, tuner.storage.timeouts); `try_study_lock` never waits,
for heartbeat threads, which must not queue behind a claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuner.storage.timeouts import LOCK_WAIT, Stalled
from tuner.storage.urls import DEFAULT_STORAGE, engine_options, file_path, grpc_address, normalize_url

MYSQL_LOCK_STEP = 1  # whole seconds GET_LOCK waits in the server per call


class LockTimeout(Stalled):
    """The study lock was not free within its wait: a holder (or the database) is frozen; retried as an outage."""


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
def study_lock(storage_url: str | None, study_name: str, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the study's lock for the `with` block; LockTimeout (an outage, retried) after `wait` seconds without it."""
    with _held(storage_url, study_name, wait) as held:
        if not held:
            raise LockTimeout(
                f"the study lock of {study_name!r} was not free within {wait:g}s "
                "(a worker or proxy holding it is frozen, or the database is)"
            )
        yield


@contextlib.contextmanager
def try_study_lock(storage_url: str | None, study_name: str) -> Iterator[bool]:
    """The study's lock for the `with` block if it is free now (True), else False at once: never waits."""
    with _held(storage_url, study_name, 0) as held:
        yield held


def _pauses(wait: float) -> Iterator[float]:
    """Pauses between tries, growing from 10 ms to 200 ms, until `wait` seconds have passed; none when 0."""
    deadline, pause = time.monotonic() + wait, 0.01
    while (left := deadline - time.monotonic()) > 0:
        yield min(left, pause * random.uniform(0.5, 1.5))
        pause = min(2 * pause, 0.2)


@contextlib.contextmanager
def _held(storage_url: str | None, study_name: str, wait: float) -> Iterator[bool]:
    import sqlalchemy
    import sqlalchemy.exc

    url = normalize_url(storage_url or DEFAULT_STORAGE)
    if url.startswith("postgresql"):
        key = {"key": _key(study_name)}
        with _engine(url).connect() as connection:
            take = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
            held = bool(connection.execute(take, key).scalar())
            for pause in _pauses(wait) if not held else ():
                time.sleep(pause)
                if held := bool(connection.execute(take, key).scalar()):
                    break
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                        connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)
                        connection.commit()
    elif url.startswith("mysql"):
        name = {"name": f"tuner-{_key(study_name) & 0xFFFFFFFFFFFF:x}"}  # MySQL lock names: 64 characters at most
        with _engine(url).connect() as connection:
            deadline = time.monotonic() + wait
            while True:  # GET_LOCK waits in the server a second at a time: within the connection's read timeout
                step = MYSQL_LOCK_STEP if time.monotonic() < deadline else 0
                got = connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, :wait)"), {**name, "wait": step})
                if (held := got.scalar() == 1) or step == 0 or time.monotonic() >= deadline:
                    break
            try:
                yield held
            finally:
                if held:
                    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                        connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:name)"), name)
    elif (address := grpc_address(url)) is not None:
        from tuner.storage.proxy import client_for

        with client_for(*address).lock(study_name, wait) as held:
            yield held
    elif (path := _lock_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            held = _flock(handle)
            for pause in _pauses(wait) if not held else ():
                time.sleep(pause)
                if held := _flock(handle):
                    break
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(handle, fcntl.LOCK_UN)
    else:  # an in-memory storage lives in one process
        held = _memory_lock.acquire(timeout=wait) if wait > 0 else _memory_lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                _memory_lock.release()


def _flock(handle: Any) -> bool:
    """Take the file lock if it is free now."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
