"""Checks on a storage URL and the file behind it before Optuna opens it.

Optuna and SQLAlchemy answer a misspelt URL, a missing folder or a damaged
file with a traceback or a message about plugins; these checks name the
problem and its fix in one line, and read a file without changing it, so a
damaged study stays as it was for the user to restore.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tuner.core.errors import TunerError
from tuner.storage.journal_repair import journal_damage
from tuner.storage.sqlite_errors import BUSY_TIMEOUT, sqlite_problem
from tuner.storage.urls import file_path, journal_path, mask_url

KINDS = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "journal", "grpc", "oracle", "mssql")
URL_FORMS = "sqlite:///FILE.db, journal:///FILE.log, postgresql://USER@HOST/DB, mysql://USER@HOST/DB or grpc://HOST:PORT"
SQLITE_HEADER = b"SQLite format 3\x00"


def check_url(url: str) -> None:
    """The URL's kind is one Optuna can open, and written the way it expects."""
    if "://" not in url:
        if url.endswith(".log"):
            return  # a bare journal path
        scheme, slash, rest = url.partition(":/")
        kind = scheme.split("+", 1)[0].lower()
        if slash and kind in KINDS:
            fixed = f"{scheme}:///{rest}" if kind in ("sqlite", "journal") else f"{scheme}://{rest}"
            raise TunerError(f"storage {mask_url(url)!r} has one slash after '{scheme}:'; write {mask_url(fixed)}")
        raise TunerError(f"storage {mask_url(url)!r} is not a URL; use {URL_FORMS}")
    kind = url.split("://", 1)[0].split("+", 1)[0].lower()
    if kind not in KINDS:
        raise TunerError(f"storage kind {kind!r} in {mask_url(url)} is unknown (a typo?); use {URL_FORMS}")
    if kind == "sqlite" and not url.startswith("sqlite:///"):
        rest = url[len("sqlite://") :]
        raise TunerError(
            f"storage {mask_url(url)!r}: an SQLite URL has three slashes before a relative path and four before an absolute "
            f"one; use sqlite:///{rest.lstrip('/')} or sqlite:////{rest.lstrip('/')}"
        )


def check_folder(url: str) -> None:
    """The folder for an SQLite file exists (a journal's folder is created on open): a stat, no read."""
    path_text = file_path(url)
    if path_text is not None and journal_path(url) is None and not Path(path_text).parent.is_dir():
        raise TunerError(f"storage {url}: folder {Path(path_text).parent} does not exist; create it, or choose another path")


def check_file(url: str) -> None:
    """The folder for a file storage exists; an existing SQLite or journal file is readable and whole."""
    check_folder(url)
    path_text = file_path(url)
    if path_text is None:
        return
    path = Path(path_text)
    if not path.is_file() or path.stat().st_size == 0:
        return
    if journal_path(url) is not None:
        _check_journal(path)
    else:
        _check_sqlite(path)


def _check_sqlite(path: Path) -> None:
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise TunerError(f"{path} is not an SQLite database; choose the right file, or another --storage")
    try:
        connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        try:
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        if (problem := sqlite_problem(error, f"sqlite:///{path}")) is not None:
            raise problem from None  # locked by another process: not damaged
        verdict = str(error)
    if verdict != "ok":
        raise TunerError(
            f"SQLite file {path} is damaged ({verdict.splitlines()[0]}); restore it from a copy, "
            "or start over with another --storage"
        )


def _check_journal(path: Path) -> None:
    damage = journal_damage(path)
    if damage is None:
        return
    where = (
        "its last line, a record cut short by a crash or a full disk"
        if damage.last_line_only
        else f"line(s) {', '.join(map(str, damage.lines))}, record(s) cut short by a crash or a full disk"
    )
    raise TunerError(
        f"journal file {path} is damaged at {where}; run 'tuner repair-journal {path}' (it keeps a copy of the file), "
        "then the same command again"
    )
