"""What SQLite's errors mean for the user: a file locked too long, a full disk; never a server outage.

An SQLite file is on this machine: when SQLite says "database is locked" or
"database or disk is full", waiting for a server to come back is pointless
(tuner.storage.outages leaves these alone). Each becomes one TunerError
line naming the file, the problem and its fix. Several `tuner` commands on
one file still coordinate: each storage call waits up to BUSY_TIMEOUT for
another's write to end, and claims are made under the study lock.
"""

from __future__ import annotations

from tuner.core.errors import TunerError, causes
from tuner.core.files import disk_full
from tuner.storage.urls import file_path, journal_path

BUSY_TIMEOUT = 10  # seconds a storage call waits for another process's write on the same SQLite file


def sqlite_file(url: str) -> str | None:
    """The file behind an SQLite URL, else None."""
    return file_path(url) if url.startswith("sqlite") and journal_path(url) is None else None


def is_sqlite_error(error: BaseException) -> bool:
    """Whether `error`, or an error behind it, is SQLite's own (sqlite3.Error)."""
    import sqlite3

    return any(isinstance(cause, sqlite3.Error) for cause in causes(error))


def sqlite_problem(error: BaseException, url: str) -> TunerError | None:
    """The one line for a locked or full SQLite file behind `url`, or None for any other error."""
    path = sqlite_file(url)
    if path is None:
        return None
    if disk_full(error):
        return TunerError(
            f"no space left on the device for SQLite file {path} (database or disk is full); "
            "free some space, or use another --storage"
        )
    if any("database is locked" in str(cause) for cause in causes(error)):
        return TunerError(
            f"SQLite file {path} is locked: another process kept it for more than {BUSY_TIMEOUT}s "
            "(database is locked); end that process (an sqlite3 shell, a backup, a stuck tuner), or for many "
            "writers use --storage journal:///FILE.log or a PostgreSQL/MySQL database"
        )
    return None
