"""Optuna's tables created once when many processes open a fresh database at the same moment.

RDBStorage creates its tables, then a version row, then Alembic's revision
row, each in its own transaction, whenever it finds them missing. Workers
started together on an empty database all try: the losers fail on "already
exists" (PostgreSQL, SQLite), on a duplicate key (MySQL's `Duplicate entry
'v3.2.0.a' for key 'PRIMARY'`), or find the tables made but the rows not yet.
Retrying on each of those texts is a guess per database and per step, so the
opening is serialized instead: each process opens the storage under a lock
held where the database lives, and the first creates the schema while the
others wait, then find it whole.

- PostgreSQL: a session advisory lock (per database);
- MySQL/MariaDB: a named lock (`GET_LOCK`; names are per server, so the
  database's name is in it);
- SQLite: an exclusive `flock` on a file beside the database.

The lock is held on its own connection for the few queries of the opening.
A process that dies holding it releases it with its connection. One that
cannot have it within LOCK_WAIT seconds (or cannot make the lock file, in a
read-only folder) opens without it, and a lost race is still retried
(tuner.storage.storages).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuner.storage.urls import engine_options, file_path

LOCK_WAIT = 60.0  # seconds: longer than any opening; a holder stuck longer is not waited for
_POLL = 0.1


def _key(database: str) -> int:
    """A stable signed 64-bit number naming the schema lock of `database`."""
    digest = hashlib.sha256(f"tuner-schema:{database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold the schema lock of the database at `url` (a normalized SQLAlchemy URL) for the `with` block."""
    if url.startswith("postgresql"):
        with _server_lock(url, _postgres_take, "SELECT pg_advisory_unlock(:key)"):
            yield
    elif url.startswith("mysql"):
        with _server_lock(url, _mysql_take, "SELECT RELEASE_LOCK(:name)"):
            yield
    elif (path := file_path(url)) is not None:
        with _file_lock(Path(f"{path}.schema-lock-tuner")):
            yield
    else:
        yield


def _postgres_take(connection: Any, database: str) -> dict[str, Any] | None:
    import sqlalchemy

    key = {"key": _key(database)}
    deadline = time.monotonic() + LOCK_WAIT
    while not connection.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        if time.monotonic() > deadline:
            return None
        time.sleep(_POLL)
    return key


def _mysql_take(connection: Any, database: str) -> dict[str, Any] | None:
    import sqlalchemy

    name = {"name": f"tuner-schema-{_key(database) & 0xFFFFFFFFFFFF:x}"}  # 64 characters at most
    taken = connection.execute(sqlalchemy.text("SELECT GET_LOCK(:name, :wait)"), {**name, "wait": LOCK_WAIT}).scalar()
    return name if taken == 1 else None


@contextlib.contextmanager
def _server_lock(url: str, take: Any, release: str) -> Iterator[None]:
    import sqlalchemy
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    options = {k: v for k, v in engine_options(url).items() if k != "pool_pre_ping"}
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, **options)
    try:
        with engine.connect() as connection:
            held = take(connection, sqlalchemy.engine.make_url(url).database or "")
            connection.commit()  # a session lock outlives the transaction; end it so no snapshot is kept
            try:
                yield
            finally:
                if held is not None:
                    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                        connection.execute(sqlalchemy.text(release), held)
                        connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        handle = open(path, "a")  # noqa: SIM115 -- closed below, after the block
    except OSError:  # a read-only folder: nobody can create a schema there, so nobody races
        yield
        return
    with handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield
                    return
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
