"""Storage URLs: the default, the installed driver, file paths behind them, and passwords masked.

- `sqlite:///tuner.db` (the default): one machine, one process at a time.
- `postgresql://...`, `mysql+pymysql://...`: many workers on many machines.
- `journal:///path/to/study.log` (or any path ending in `.log`): many processes
  on one machine without a server and without "database is locked".
- `grpc://HOST:PORT`: a `tuner storage-proxy` in front of a database, for
  more workers than the database takes connections.

A password may hold any character unencoded: the last '@' before a host
name ends the credentials. It is masked in every form and percent-encoded
before SQLAlchemy reads it (docs/security.md).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

DEFAULT_STORAGE = "sqlite:///tuner.db"
STORAGE_ENV = "TUNER_STORAGE"  # the storage URL when --storage is absent: kept off command lines (docs/security.md)
CONNECT_TIMEOUT = 5  # seconds: an unreachable database server is an error, not a hang
_QUERY_SECRET = re.compile(r"([?&;](?:password|passwd|pwd|secret|token)=)([^&;\s]*)", re.IGNORECASE)
_URL_START = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*):(/{1,3})")
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~\-]+)(?::\d*)?(?![A-Za-z0-9._~\-@%\[\]])")
_FILE_SCHEMES = ("sqlite", "journal", "file")  # paths after the slashes: an '@' there is a file name's


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where `user:password` lies in `url` (start, index of its '@'), read leniently; None without one.

    One to three slashes after the scheme (a typo keeps its password), and
    the last '@' followed by a host name ends the credentials, so a password
    with an unencoded '/', '#', '?', ':' or '@' is found whole.
    """
    start = _URL_START.match(url)
    if start is None or start.group(1).split("+")[0].lower() in _FILE_SCHEMES:
        return None
    rest = start.end()
    for at in reversed([i for i in range(rest, len(url)) if url[i] == "@"]):
        if _HOST.match(url, at + 1):
            return rest, at
    return None


def _password(url: str) -> str | None:
    """The password of `url` as written (None without one)."""
    span = _userinfo(url)
    if span is None:
        return None
    _, colon, password = url[span[0] : span[1]].partition(":")
    return password if colon else None


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and errors.

    Covers `user:pass@host` with any character in the password (unencoded
    '/', '#', '?', ':', '@', or percent-encoded), URLs with one or three
    slashes, and `?password=...` in the query string; works on any text
    holding URLs (each URL ends at white space).
    """
    pieces, done = [], 0
    for start in _URL_START.finditer(url):
        if start.start() < done:
            continue  # inside the URL just masked
        end = start.start() + len(url[start.start() :].split(None, 1)[0])
        token = url[start.start() : end]
        span = _userinfo(token)
        if span is not None and ":" in token[span[0] : span[1]]:
            user = token[span[0] : span[1]].partition(":")[0]
            token = f"{token[: span[0]]}{user}:***{token[span[1] :]}"
        pieces += [url[done : start.start()], token]
        done = end
    return _QUERY_SECRET.sub(r"\1***", "".join(pieces) + url[done:])


def mask_secrets(text: str, url: str) -> str:
    """`text` (a driver's error message) with the URL's password hidden wherever it appears."""
    text = mask_url(text)
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def url_secrets(url: str) -> set[str]:
    """The passwords in `url` (credentials, `?password=`): as written, decoded, and encoded as encode_password does."""
    found = [_password(url.strip()), *(m.group(2) for m in _QUERY_SECRET.finditer(url))]
    return {s for secret in found if secret for s in (secret, unquote(secret), _escaped(secret)) if s}


def _escaped(password: str) -> str:
    """`password` percent-encoded for a URL; its `%XX` escapes kept."""
    return quote(re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", password), safe="%")


def encode_password(url: str) -> str:
    """`url` with its password percent-encoded, so that SQLAlchemy reads it whole (encoded ones stay as they are).

    `postgresql://u:pa/ss#1@db/t` -> `postgresql://u:pa%2Fss%231@db/t`; a
    '%' that starts no `%XX` escape is encoded too.
    """
    span = _userinfo(url)
    password = _password(url)
    if span is None or password is None:
        return url
    user = url[span[0] : span[1]].partition(":")[0]
    return f"{url[: span[0]]}{user}:{_escaped(password)}{url[span[1] :]}"


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
    """`postgresql://` and `mysql://` mapped to the installed driver (psycopg 3, PyMySQL); the password encoded."""
    url = encode_password(url)
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
