"""Storage URLs -> Optuna storages, in one place for runs, workers, export and dashboard.

- `sqlite:///tuner.db` (the default): one machine, one process at a time.
- `postgresql://...`, `mysql+pymysql://...`: many workers on many machines.
- `journal:///path/to/study.log` (or any path ending in `.log`): many processes
  on one machine without a server and without "database is locked".

RDB storages get worker heartbeats: a trial whose worker died is failed after
the grace period and re-queued with the same parameters.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from tuner.errors import TunerError

DEFAULT_STORAGE = "sqlite:///tuner.db"
HEARTBEAT_INTERVAL = 30  # seconds
GRACE_PERIOD = 120  # seconds without a heartbeat before a trial counts as dead
MAX_RETRY = 2


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
    from urllib.parse import unquote, urlsplit

    text = mask_url(text)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def normalize_url(url: str) -> str:
    """`postgresql://` and `mysql://` mapped to the installed driver (psycopg 3, PyMySQL)."""
    for plain, drivers in (("postgresql://", ("psycopg", "psycopg2")), ("postgres://", ("psycopg", "psycopg2")),
                           ("mysql://", ("pymysql", "MySQLdb"))):
        if url.startswith(plain):
            driver = next((d for d in drivers if _importable(d)), drivers[0])
            dialect = "postgresql" if plain.startswith("postgres") else "mysql"
            return f"{dialect}+{driver.lower()}://" + url[len(plain):]
    return url


def engine_options(url: str) -> dict:
    """SQLAlchemy engine options for a server database: a short connect timeout, dead-connection checks."""
    if url.startswith("sqlite"):
        return {}
    options: dict = {"pool_pre_ping": True}
    if url.startswith(("postgresql+psycopg", "mysql+pymysql", "mysql+mysqldb")):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return options


def _journal_path(url: str) -> str | None:
    if url.startswith("journal:///"):
        return url[len("journal://"):]
    if url.startswith("journal://"):
        return url[len("journal://"):]
    if "://" not in url and url.endswith(".log"):
        return url
    return None


def open_storage(
    url: str | None = None,
    heartbeat: bool = True,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
):
    """An Optuna storage for `url`; one line of TunerError if it cannot be opened.

    Heartbeat settings default to HEARTBEAT_INTERVAL, GRACE_PERIOD, MAX_RETRY;
    workers pass their own (tests use short ones).
    """
    import optuna

    given = url or DEFAULT_STORAGE
    url = normalize_url(given)
    journal = _journal_path(url)
    beats = (heartbeat_interval or HEARTBEAT_INTERVAL, grace_period or GRACE_PERIOD,
             MAX_RETRY if max_retry is None else max_retry)
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; we use them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _open(url, journal, heartbeat, beats, shown=given)


def _open(url: str, journal: str | None, heartbeat: bool, beats: tuple = (HEARTBEAT_INTERVAL, GRACE_PERIOD, MAX_RETRY),
          shown: str | None = None):
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    try:
        if journal is not None:
            from optuna.storages.journal import JournalFileBackend

            Path(journal).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(journal))
        if "://" not in url:
            raise TunerError(
                f"storage {url!r} is not a URL; use sqlite:///FILE.db, journal:///FILE.log or postgresql://USER@HOST/DB"
            )
        kwargs = {}
        if heartbeat:
            kwargs = dict(
                heartbeat_interval=beats[0],
                grace_period=beats[1],
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=beats[2]),
            )
        return _rdb_storage(url, engine_options(url), kwargs)
    except TunerError:
        raise
    except ModuleNotFoundError as error:
        extra = "postgres" if "psycopg" in str(error) or "postgres" in url else "mysql"
        raise TunerError(
            f"storage {mask_url(shown or url)}: the database driver is missing ({error.name}); "
            f"run 'pip install tuner[{extra}]'"
        ) from None
    except Exception as error:  # SQLAlchemy and drivers raise many types; all mean "unusable URL"
        reason = mask_secrets(str(error).splitlines()[0], url) if str(error) else type(error).__name__
        raise TunerError(
            f"cannot open storage {mask_url(shown or url)}: {reason}; check the URL, the server and the credentials"
        ) from None


def _rdb_storage(url: str, engine_kwargs: dict, kwargs: dict, attempts: int = 5):
    """RDBStorage, retried when another process is creating the same schema at that moment.

    Two workers starting together on a new database race on CREATE TABLE;
    the loser sees "already exists" and succeeds once the winner is done.
    """
    import time

    import optuna

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as error:
            if "already exists" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def artifact_dir(url: str | None = None) -> Path:
    """Where a study's artifacts (model cards, plots) live: beside a file storage.

    `sqlite:///runs/tuner.db` -> `runs/tuner-artifacts/`; a journal file alike.
    For a server database there is no "beside": `$TUNER_ARTIFACTS`, else
    `./tuner-artifacts`. Export writes here; the dashboard reads from here.
    """
    import os

    url = url or DEFAULT_STORAGE
    if os.environ.get("TUNER_ARTIFACTS"):
        return Path(os.environ["TUNER_ARTIFACTS"])
    path = _journal_path(url)
    if path is None and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = url[len("sqlite:///"):]
    if path is None:
        return Path("tuner-artifacts")
    path = Path(path)
    return path.with_name(f"{path.stem}-artifacts")


def artifact_store(url: str | None = None):
    """Optuna's file-system artifact store at `artifact_dir(url)`, created if needed."""
    from optuna.artifacts import FileSystemArtifactStore

    directory = artifact_dir(url)
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(directory))
