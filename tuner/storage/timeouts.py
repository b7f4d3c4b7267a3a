"""Bounds on every wait for a database: connecting, each statement, each read and write, each lock wait.

A server that refuses is noticed at once; one that freezes (a paused VM,
SIGSTOP, a hung disk, a network that drops packets) would otherwise be
waited for forever. Every wait here ends within its bound with Stalled (or
the driver's own timeout error), which tuner.storage.outages counts as an
outage, so a frozen server is ridden out, and given up on after
--outage-limit, exactly like one that refuses.

- PostgreSQL (psycopg 3): the server cancels a statement after
  STATEMENT_TIMEOUT (`statement_timeout`, `lock_timeout`); TCP keepalives and
  `tcp_user_timeout` drop a dead peer; and the client itself gives up on any
  wait for the server (statement, commit, rollback, ping) after
  STATEMENT_TIMEOUT + a margin, since a frozen server cancels nothing.
- MySQL/MariaDB (PyMySQL): `read_timeout` and `write_timeout` on the socket.
- Lock waits poll with a bound of LOCK_WAIT (tuner.storage.lock).
- A storage proxy (gRPC): a deadline on every call, Optuna's too
  (tuner.storage.proxy.CALL_TIMEOUT).
"""

from __future__ import annotations

from typing import Any

from tuner.storage.urls import CONNECT_TIMEOUT

STATEMENT_TIMEOUT = 10  # seconds a statement may run (the tuner's take milliseconds)
CLIENT_MARGIN = 2  # seconds the client waits beyond STATEMENT_TIMEOUT for the server's own cancel
LOCK_WAIT = 30  # seconds a worker waits for the study lock (held for milliseconds) before it counts as a stall


class Stalled(TimeoutError):
    """A database, a proxy or a lock did not answer within its bound: an outage (tuner.storage.outages)."""


def postgres_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for psycopg 3: every wait for the server bounded (see the module)."""
    conninfo = "postgresql://" + url.split("://", 1)[1]  # libpq reads the URL itself, query parameters included
    params: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "options": f"-c statement_timeout={STATEMENT_TIMEOUT * 1000} -c lock_timeout={STATEMENT_TIMEOUT * 1000}",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": (STATEMENT_TIMEOUT + CLIENT_MARGIN) * 1000,
    }

    def connect() -> Any:
        return _bounded_connection_class().connect(conninfo, **params)

    return {"creator": connect}


def mysql_connect_args() -> dict[str, Any]:
    """PyMySQL's connect arguments: connecting, and each read and write of the socket, bounded."""
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": STATEMENT_TIMEOUT + CLIENT_MARGIN,
        "write_timeout": STATEMENT_TIMEOUT + CLIENT_MARGIN,
    }


_bounded: Any = None


def _bounded_connection_class() -> Any:
    """psycopg's Connection whose every wait for the server ends after STATEMENT_TIMEOUT + CLIENT_MARGIN.

    A wait that runs out closes the connection (SQLAlchemy then drops it
    from its pool) and raises psycopg's OperationalError, as a lost server does.
    """
    global _bounded
    if _bounded is None:
        import psycopg
        from psycopg import errors

        class BoundedConnection(psycopg.Connection):
            def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
                bound = STATEMENT_TIMEOUT + CLIENT_MARGIN if timeout is None else timeout
                try:
                    return super().wait(gen, interval=interval, timeout=bound)
                except errors._WaitTimeout:
                    self.pgconn.finish()  # the server is frozen or gone: this connection is done
                    raise psycopg.OperationalError(
                        f"the server did not answer within {bound:g}s (frozen, or the network is down)"
                    ) from None

        _bounded = BoundedConnection
    return _bounded
