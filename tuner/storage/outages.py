"""Riding out a database that goes away for a moment: a restart, a failover, a storage proxy restarted.

A call that fails because the database (or the storage proxy) cannot be
reached is tried again, with pauses growing from half a second to eight,
until it succeeds or the outage has lasted longer than the limit; then
StorageOutage: one line naming the database, what happened and the fix
(exit status 2). Errors that are answers (a finished trial, a missing study,
bad values) pass at once: only "cannot reach it" is retried. A file on this
machine (SQLite, a journal) has no outages: SQLite's "database is locked" or
"disk is full" is one line saying so (tuner.storage.sqlite_errors).

`Outages.guard(storage)` puts every method Optuna calls on a storage behind
`Outages.retrying`, so asks, reports, pruning checks, tells and heartbeats
are retried wherever they are made, by Optuna or by us. Only the outermost
`retrying` call on a thread retries: a section run under the study lock is
retried whole (the lock taken again), never call by call inside it, so a
lock lost with its connection never ends up held by two workers.

A server that freezes fails calls only when their timeouts run out
(tuner.storage.timeouts); those errors are outages too, and the outage is
counted from the moment the failed call began, so --outage-limit holds for
a frozen server as for one that refuses.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tuner.core.errors import TunerError, causes
from tuner.core.settings import OUTAGE_LIMIT
from tuner.storage.sqlite_errors import is_sqlite_error, sqlite_problem
from tuner.storage.urls import CONNECT_TIMEOUT, engine_options, file_path, mask_secrets, mask_url, normalize_url

FIRST_PAUSE, LONGEST_PAUSE = 0.5, 8.0  # seconds between attempts: doubled each time, up to the longest
STALL = 5.0  # seconds a call may take before it counts as a stall of the database (SharedStudy sets its own)

T = TypeVar("T")


class StorageOutage(TunerError):
    """The database stayed unreachable for longer than the outage limit."""


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or an error that caused it, says the database or the proxy cannot be reached now.

    SQLAlchemy's OperationalError and InterfaceError (refused, reset, shut
    down, starting up, timed out, a statement over its timeout, a server
    that froze) and a connection it invalidated; a wait that outlasted its
    bound (Stalled, a lock included; tuner.storage.timeouts); gRPC's
    UNAVAILABLE (the proxy is down, or its database is), DEADLINE_EXCEEDED
    (it froze) and RESOURCE_EXHAUSTED (it grants no more locks now); the
    OS's ConnectionError and TimeoutError.
    Never SQLite's errors: its file is here, not away.
    """
    import sqlalchemy.exc

    if is_sqlite_error(error):
        return False
    for cause in causes(error):
        if isinstance(cause, StorageOutage):
            return False
        if isinstance(
            cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, ConnectionError, TimeoutError)
        ):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if _grpc_code(cause) in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
            return True
    return False


def cannot_reach(error: BaseException, url: str) -> bool:
    """Whether `error` comes from an outage: it says so, or the storage failed and the database does not answer.

    A connection broken mid-transaction surfaces in many forms (a session
    that must be rolled back first, a commit that failed...); asking the
    database itself, on a fresh connection, tells them from real errors.
    """
    import optuna
    import sqlalchemy.exc

    if file_path(normalize_url(url)) is not None:
        return False  # SQLite or a journal file: nothing to wait for
    if is_outage(error):
        return True
    if isinstance(error, StorageOutage):
        return False
    storage_failed = any(
        isinstance(cause, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError))
        or _grpc_code(cause) not in (None, "NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "ALREADY_EXISTS")
        for cause in causes(error)
    )
    return storage_failed and not database_answers(url)


def _grpc_code(error: BaseException) -> str | None:
    grpc = sys.modules.get("grpc")  # only a gRPC storage raises its errors, and then it is imported
    if grpc is None or not isinstance(error, grpc.RpcError) or not hasattr(error, "code"):
        return None
    return str(error.code().name)


_probes: dict[str, Any] = {}


def ping(url: str) -> None:
    """Ask the database (or the proxy, and the database behind it) for an answer on a fresh connection; raises why not."""
    from tuner.storage.urls import grpc_address

    address = grpc_address(url)
    if address is not None:
        from tuner.storage.proxy import client_for

        client_for(*address).call("Ping", timeout=CONNECT_TIMEOUT)
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = normalize_url(url)
    if url not in _probes:
        _probes[url] = sqlalchemy.create_engine(url, poolclass=NullPool, **engine_options(url))
    with _probes[url].connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))


def database_answers(url: str) -> bool:
    """Whether the database (or the proxy, and the database behind it) answers a query now, on a fresh connection."""
    try:
        ping(url)
        return True
    except Exception:
        return False


def reason(error: BaseException, url: str) -> str:
    """The root cause's first line, passwords masked (drivers repeat the URL's parts)."""
    while error.__cause__ is not None:
        error = error.__cause__
    if _grpc_code(error) is not None:
        text = str(getattr(error, "details", lambda: error)())
    else:
        text = str(error).strip()
    return mask_secrets(text.splitlines()[0], url) if text else type(error).__name__


_DRIVER_OUTAGES = {"OperationalError", "InterfaceError"}  # PEP 249's names, in every driver


class _NoOutageTraceback(logging.Filter):
    """Drops a log record whose exception is an outage (the driver's own, unwrapped): the retries say it, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        driver_outage = any(cls.__name__ in _DRIVER_OUTAGES for cls in type(error).__mro__)
        return not (driver_outage or is_outage(error))


def hide_pool_reset_errors() -> None:
    """Drop SQLAlchemy's "Exception during reset or similar" (a traceback) when the outage is what broke the reset.

    A connection handed back to the pool while the server is frozen or gone
    fails its rollback; the pool logs that with a traceback on stderr.
    """
    for name in ("sqlalchemy.pool.impl.QueuePool", "sqlalchemy.pool.impl.NullPool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoOutageTraceback) for f in logger.filters):
            logger.addFilter(_NoOutageTraceback())


class Outages:
    """Retries across outages of one database, shared by every thread of a process that uses it.

    It also keeps what a reaper needs to know of stalls: a call that took
    longer than `stall` seconds (a server that froze for less than the
    statement timeout answers late, not with an error) ends like an outage,
    silently, and one still waiting after `stall` seconds counts as an
    outage in progress (`seconds_since_back`); `unobserved` is how long
    this process made no call before the current one.
    """

    def __init__(
        self, url: str, limit: float = OUTAGE_LIMIT, say: Callable[[str], None] | None = None, stall: float = STALL
    ):
        if not limit > 0:
            raise TunerError(f"--outage-limit must be a positive number of seconds, got {limit!r}")
        self.url, self.shown, self.limit, self.stall = url, mask_url(url), limit, stall
        self.say = say or (lambda text: print(f"tuner: {text}", flush=True))
        self._state = threading.Lock()
        self._local = threading.local()
        self._down_since: float | None = None  # time.monotonic() of the current outage's start
        self._back_at = -math.inf  # when the last outage (or stall) ended
        self._gave_up: str | None = None  # the StorageOutage message, once the limit has passed
        self._waiting: dict[int, float] = {}  # thread id -> when its call in flight began
        self._last_done = -math.inf  # when the last call that succeeded ended

    def retrying(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)`, tried again through an outage; StorageOutage once it outlasts the limit."""
        if getattr(self._local, "inside", False):  # an outer retrying call on this thread retries for us
            return call(*args, **kwargs)
        self._local.inside = True
        self._local.unobserved = time.monotonic() - self._last_done
        thread = threading.get_ident()
        try:
            pause = FIRST_PAUSE
            while True:
                if self._gave_up is not None:
                    raise StorageOutage(self._gave_up)
                began = self._waiting[thread] = time.monotonic()
                try:
                    result = call(*args, **kwargs)
                except Exception as error:
                    if (problem := sqlite_problem(error, self.url)) is not None:
                        raise problem from None
                    if not cannot_reach(error, self.url):
                        raise
                    left = self._failed(error, began)  # seconds of the limit left
                    time.sleep(min(pause * random.uniform(0.8, 1.2), left + 0.05))  # jitter: not all back in step
                    pause = min(2 * pause, LONGEST_PAUSE)
                    continue
                self._succeeded(began)
                return result
        finally:
            self._local.inside = False
            self._waiting.pop(thread, None)

    def _failed(self, error: BaseException, began: float) -> float:
        """Note a failed attempt that began at `began`; the seconds of the limit left, or StorageOutage when none are.

        An outage starts when its first failed attempt began: a frozen server
        fails a call only after the call's timeout, and that time counts.
        """
        now = time.monotonic()
        with self._state:
            if self._down_since is None:
                self._down_since = min(began, now)
                self.say(
                    f"database {self.shown} unreachable ({reason(error, self.url)}); retrying for up to {self.limit:g}s"
                )
            down = now - self._down_since
            if down > self.limit and self._gave_up is None:
                self._gave_up = (
                    f"database {self.shown} unreachable for {down:.0f}s, longer than --outage-limit {self.limit:g}s "
                    f"({reason(error, self.url)}); start it again (or raise --outage-limit) and rerun the same "
                    "command: the trial in flight is failed by its heartbeat and re-queued"
                )
            if self._gave_up is not None:
                raise StorageOutage(self._gave_up) from None
            return self.limit - down

    def _succeeded(self, began: float) -> None:
        now = self._last_done = time.monotonic()
        if now - began > self.stall:  # answered, but late: the database stalled; as good as an outage for reaping
            with self._state:
                self._back_at = max(self._back_at, now)
        if self._down_since is None:  # the common case: no lock taken
            return
        with self._state:
            if self._down_since is not None:
                self.say(f"database {self.shown} reachable again after {now - self._down_since:.0f}s")
                self._down_since, self._back_at = None, now

    def seconds_since_back(self) -> float:
        """Seconds since the last outage or stall ended: 0 during one (a call waiting longer than `stall`
        included, and the call that will end it), infinite if none."""
        now = time.monotonic()
        if self._down_since is not None or any(now - began > self.stall for began in list(self._waiting.values())):
            return 0.0
        return now - self._back_at

    def unobserved(self) -> float:
        """Seconds this process made no successful call before this thread's current one began (infinite: none yet).

        The database may have frozen unseen in that time, so a heartbeat seen
        now may be that much older than its worker's silence.
        """
        return float(getattr(self._local, "unobserved", math.inf))

    def guard(self, storage: Any) -> Any:
        """A storage that delegates to `storage`, each call retried through outages (tuner.storage.guarded_storage)."""
        from tuner.storage.guarded_storage import GuardedStorage
        from tuner.storage.optuna_compat import behind_cache, hide_rdb_fallback_warning

        hide_rdb_fallback_warning()  # Optuna's own warning of a broken connection, with its SQL: the retries say it
        hide_pool_reset_errors()
        return GuardedStorage(behind_cache(storage), self)
