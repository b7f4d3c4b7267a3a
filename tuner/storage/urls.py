"""Storage URLs: the default, the installed driver, file paths behind them, and passwords masked.

- `sqlite:///tuner.db` (the default): one machine, one process at a time.
- `postgresql://...`, `mysql+pymysql://...`: many workers on many machines.
- `journal:///path/to/study.log` (or any path ending in `.log`): many processes
  on one machine without a server and without "database is locked".
- `grpc://HOST:PORT`: a `tuner storage-proxy` in front of a database, for
  more workers than the database takes connections.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_STORAGE = "sqlite:///tuner.db"
CONNECT_TIMEOUT = 5  # seconds: an unreachable database server is an error, not a hang
_QUERY_SECRET = re.compile(r"([?&;](?:password|passwd|pwd|secret|token)=)[^&;#\s]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and errors.

    Covers `user:pass@host` (also with '@' or '%40' in the password) and
    `?password=...` in the query string; works on any text holding a URL.
    """
    masked = re.sub(r"(://[^:/@?#\s]*):[^/?#\s]*@", r"\1:***@", url)
    return _QUERY_SECRET.sub(r"\1***", masked)


def mask_secrets(text: str, url: str) -> str:
    """`text` (a driver's error message) with the URL's password hidden wherever it appears."""
    text = mask_url(text)
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def url_secrets(url: str) -> set[str]:
    """The password in `url`, as written and URL-decoded (empty when it has none)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    return {s for s in (password, unquote(password or "")) if s}


class MaskedStream:
    """A text stream that writes `secrets` as ***: every line a command prints, its tracebacks and
    the log lines of Optuna, SQLAlchemy and the drivers included, since they all write to sys.stdout or sys.stderr."""

    def __init__(self, stream: Any, secrets: set[str]):
        self._stream, self._secrets = stream, sorted(secrets, key=len, reverse=True)

    def write(self, text: str) -> int:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding...: the real stream's
        return getattr(self._stream, name)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def normalize_url(url: str) -> str:
    """`postgresql://` and `mysql://` mapped to the installed driver (psycopg 3, PyMySQL)."""
    for plain, drivers in (
        ("postgresql://", ("psycopg", "psycopg2")),
        ("postgres://", ("psycopg", "psycopg2")),
        ("mysql://", ("pymysql", "MySQLdb")),
    ):
        if url.startswith(plain):
            driver = next((d for d in drivers if _importable(d)), drivers[0])
            dialect = "postgresql" if plain.startswith("postgres") else "mysql"
            return f"{dialect}+{driver.lower()}://" + url[len(plain) :]
    return url


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for a server database: dead connections checked, every wait bounded (timeouts.py)."""
    from tuner.storage import timeouts

    if url.startswith("sqlite"):
        return {}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql+psycopg://"):
        options.update(timeouts.postgres_options(url))
    elif url.startswith(("mysql+pymysql", "mysql+mysqldb")):
        options["connect_args"] = timeouts.mysql_connect_args()
    elif url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return options


def journal_path(url: str) -> str | None:
    """The file behind a journal storage URL (or a bare `.log` path), else None."""
    if url.startswith("journal://"):
        path = url[len("journal://") :]
        return "/" + path.lstrip("/") if path.startswith("/") else path  # journal:////abs is /abs too
    if "://" not in url and url.endswith(".log"):
        return url
    return None


def file_path(url: str) -> str | None:
    """The file behind a journal or SQLite URL, else None (a server, or memory)."""
    path = journal_path(url)
    if path is None and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = url[len("sqlite:///") :]
    return path


def grpc_address(url: str) -> tuple[str, int] | None:
    """(host, port) of a `grpc://HOST:PORT` storage proxy URL, else None."""
    if not url.startswith("grpc://"):
        return None
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 13000


def artifact_dir(url: str | None = None) -> Path:
    """Where a study's artifacts (model cards, plots) live: beside a file storage.

    `sqlite:///runs/tuner.db` -> `runs/tuner-artifacts/`; a journal file alike.
    For a server database there is no "beside": `$TUNER_ARTIFACTS`, else
    `./tuner-artifacts`. Export writes here; the dashboard reads from here.
    """
    import os

    if os.environ.get("TUNER_ARTIFACTS"):
        return Path(os.environ["TUNER_ARTIFACTS"])
    path = file_path(url or DEFAULT_STORAGE)
    if path is None:
        return Path("tuner-artifacts")
    return Path(path).with_name(f"{Path(path).stem}-artifacts")
