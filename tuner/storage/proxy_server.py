"""`tuner storage-proxy`: Optuna's gRPC storage proxy in front of a database, with heartbeats and the study lock.

Workers connect with `--storage grpc://HOST:PORT` and never open a database
connection: the proxy holds a small pool of them (at most THREADS, one per
serving thread, plus one per study lock held), however many workers there
are. Besides Optuna's storage service it serves `tuner.StudyProxy`
(tuner.storage.proxy): heartbeats and the study lock.

When its database is unreachable the proxy answers UNAVAILABLE at once, the
code gRPC gives when the proxy itself is down; workers then wait and retry
(tuner.storage.outages) with their own --outage-limit, and the proxy's pool
reconnects when the database is back. Restarting the proxy is an outage too.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tuner.core.errors import TunerError
from tuner.storage import proxy
from tuner.storage.lock import study_lock
from tuner.storage.optuna_compat import add_storage_proxy_service, stale_trial_ids
from tuner.storage.outages import cannot_reach, database_answers, reason
from tuner.storage.storages import open_storage
from tuner.storage.urls import mask_url, normalize_url

DEFAULT_PORT = 13000
THREADS = 16  # requests served at once; SQLAlchemy's default pool (5 + 10 overflow) fits under it


@dataclass
class _Held:
    holder: str
    expires: float
    lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class StudyLocks:
    """The study locks the proxy grants: one holder per study, each also holding the database's study lock."""

    def __init__(self, url: str):
        self.url = url
        self._held: dict[str, _Held] = {}
        self._guard = threading.Lock()

    def acquire(self, study: str, holder: str) -> bool:
        """Grant the lock to `holder` if it is free (or its holder's lease ran out); False: ask again later."""
        with self._guard:
            held = self._held.get(study)
            if held is not None and held.holder != holder and time.monotonic() < held.expires:
                return False
            if held is not None:
                self._release(study)
            granted = _Held(holder, time.monotonic() + proxy.LOCK_LEASE)
            granted.lock.enter_context(study_lock(self.url, study))  # waits only for workers connected directly
            self._held[study] = granted
            return True

    def release(self, study: str, holder: str) -> None:
        """Give the lock back (nothing if `holder` no longer holds it)."""
        with self._guard:
            held = self._held.get(study)
            if held is not None and held.holder == holder:
                self._release(study)

    def _release(self, study: str) -> None:
        held = self._held.pop(study)
        with contextlib.suppress(Exception):  # a lost connection released the database's lock with it
            held.lock.close()


def _service(storage: Any, url: str) -> Any:
    """`tuner.StudyProxy`'s handlers (see tuner.storage.proxy)."""
    import grpc

    locks = StudyLocks(url)

    def beat(request: dict[str, Any], context: Any) -> dict[str, Any]:
        storage.record_heartbeat(int(request["trial_id"]))
        return {}

    def stale(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"trial_ids": stale_trial_ids(storage, int(request["study_id"]), int(request["grace"]))}

    def lock(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"granted": locks.acquire(str(request["study"]), str(request["holder"]))}

    def unlock(request: dict[str, Any], context: Any) -> dict[str, Any]:
        locks.release(str(request["study"]), str(request["holder"]))
        return {}

    def ping(request: dict[str, Any], context: Any) -> dict[str, Any]:
        if not database_answers(url):
            context.abort(grpc.StatusCode.UNAVAILABLE, f"database {mask_url(url)} does not answer")
        return {}

    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
        "Ping": ping,
        "Beat": beat,
        "Stale": stale,
        "Lock": lock,
        "Unlock": unlock,
    }
    return grpc.method_handlers_generic_handler(
        proxy.SERVICE,
        {
            name: grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=proxy.decode, response_serializer=proxy.encode
            )
            for name, handler in handlers.items()
        },
    )


def _database_down_is_unavailable(url: str) -> Any:
    """A server interceptor: a request that failed because the database is unreachable answers UNAVAILABLE.

    Optuna's service would answer UNKNOWN, which a worker cannot tell from
    a bug; UNAVAILABLE is what it retries.
    """
    import grpc

    class Interceptor(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = continuation(details)
            if handler is None or handler.unary_unary is None:
                return handler
            served = handler.unary_unary

            def guarded(request: Any, context: Any) -> Any:
                try:
                    return served(request, context)
                except Exception as error:
                    if not cannot_reach(error, url):
                        raise
                    context.abort(grpc.StatusCode.UNAVAILABLE, f"database unreachable: {reason(error, url)}")

            return grpc.unary_unary_rpc_method_handler(
                guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
            )

    return Interceptor()


def _check_free(host: str, port: int) -> None:
    """One line if the address cannot be bound (gRPC would log its own lines to stderr first)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as error:
            raise TunerError(f"cannot listen on {host}:{port}: {error.strerror}; choose another --port") from None


def make_proxy(url: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, threads: int = THREADS) -> tuple[Any, int]:
    """A started proxy server for the database at `url` and the port it listens on (0 picks a free one)."""
    import grpc

    if not normalize_url(url).startswith(("postgresql", "mysql")):
        raise TunerError(
            f"the storage proxy serves a PostgreSQL or MySQL database, not {mask_url(url)}; "
            "pass --storage postgresql://... or mysql://..."
        )
    _check_free(host, port)
    import optuna

    database = open_storage(url)  # heartbeats enabled: the proxy records them for its workers
    cached = optuna.storages.get_storage(database)  # Optuna's cache: reads only new and unfinished trials
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads),
        interceptors=[_database_down_is_unavailable(url)],
        options=[("grpc.so_reuseport", 0)],  # a second proxy on the same port is an error, not a silent twin
    )
    add_storage_proxy_service(server, cached)
    server.add_generic_rpc_handlers((_service(database, url),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise TunerError(
            f"cannot listen on {host}:{port} (in use, or not an address of this machine); choose another --port"
        )
    server.start()
    return server, bound


def serve_proxy(url: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> int:
    """Serve until Ctrl-C or SIGTERM; prints where workers connect first."""
    server, bound = make_proxy(url, host, port)
    shown_host = f"[{host}]" if ":" in host else host
    print(
        f"storage proxy for {mask_url(url)} on grpc://{shown_host}:{bound} "
        f"(workers: --storage grpc://{shown_host}:{bound}); Ctrl-C stops it",
        flush=True,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: the storage proxy has no authentication or encryption; anyone who reaches {host}:{bound} "
            "can read and change every study in the database; keep it on a private network",
            file=sys.stderr,
            flush=True,
        )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(1):
        pass
    server.stop(grace=5).wait()
    print("storage proxy stopped", flush=True)
    return 0
