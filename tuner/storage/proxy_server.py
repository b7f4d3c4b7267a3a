"""`tuner storage-proxy`: Optuna's gRPC storage proxy in front of a database, with heartbeats and the study lock.

Workers connect with `--storage grpc://HOST:PORT` and never open a database
connection: the proxy holds a small pool of them (at most THREADS, one per
serving thread, plus one per study lock held, proxy.MAX_LOCKS at most),
however many workers there are. Besides Optuna's storage service it serves `tuner.StudyProxy`
(tuner.storage.proxy): heartbeats and the study lock.

When its database is unreachable the proxy answers UNAVAILABLE at once, the
code gRPC gives when the proxy itself is down; workers then wait and retry
(tuner.storage.outages) with their own --outage-limit, and the proxy's pool
reconnects when the database is back. Restarting the proxy is an outage too.
"""

from __future__ import annotations

import contextlib
import itertools
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
from tuner.storage.lock import try_study_lock
from tuner.storage.optuna_compat import add_storage_proxy_service, stale_trial_ids
from tuner.storage.outages import cannot_reach, database_answers, reason
from tuner.storage.storages import open_storage
from tuner.storage.urls import mask_url, normalize_url

DEFAULT_PORT = 13000
THREADS = 16  # requests served at once; SQLAlchemy's default pool (5 + 10 overflow) fits under it


@dataclass
class _Held:
    holder: str
    token: int
    expires: float
    lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class StudyLocks:
    """The study locks the proxy grants: one holder per study, each also holding the database's study lock.

    Bounded: at most proxy.MAX_LOCKS held at once (LocksExhausted beyond);
    a grant is a lease of proxy.LOCK_LEASE seconds, renewed by its holder and
    released (with its database connection) by `sweep` once it runs out;
    `renew` and `release` need the grant's fencing token, so a holder whose
    lease ran out can neither renew nor release a later grant. The proxy
    never waits for the database's lock: a study locked by a worker
    connected directly is "not granted, ask again".
    """

    def __init__(self, url: str, limit: int = proxy.MAX_LOCKS, lease: float = proxy.LOCK_LEASE):
        self.url, self.limit, self.lease = url, limit, lease
        self._held: dict[str, _Held] = {}
        self._guard = threading.Lock()
        self._tokens = itertools.count(1)

    def acquire(self, study: str, holder: str) -> int | None:
        """The grant's fencing token if the lock is free (or its lease ran out); None: ask again later."""
        with self._guard:
            self._sweep()
            held = self._held.get(study)
            if held is not None:
                return held.token if held.holder == holder else None
            if len(self._held) >= self.limit:
                raise LocksExhausted(
                    f"the storage proxy holds {len(self._held)} study locks, its most (MAX_LOCKS); "
                    "they free up as their leases end"
                )
            granted = _Held(holder, next(self._tokens), time.monotonic() + self.lease)
            if not granted.lock.enter_context(try_study_lock(self.url, study)):
                granted.lock.close()  # a worker connected directly holds it
                return None
            self._held[study] = granted
            return granted.token

    def renew(self, study: str, holder: str, token: int) -> bool:
        """Extend the holder's lease; False when the grant is no longer its own (it ran out, or was fenced)."""
        with self._guard:
            self._sweep()
            held = self._held.get(study)
            if held is None or held.holder != holder or held.token != token:
                return False
            held.expires = time.monotonic() + self.lease
            return True

    def release(self, study: str, holder: str, token: int) -> bool:
        """Give the lock back; False (nothing released) if `holder` with `token` no longer holds it."""
        with self._guard:
            held = self._held.get(study)
            if held is None or held.holder != holder or held.token != token:
                return False
            self._release(study)
            return True

    def sweep(self) -> None:
        """Release every grant whose lease ran out, and its database connection."""
        with self._guard:
            self._sweep()

    def count(self) -> int:
        """Locks granted now."""
        with self._guard:
            return len(self._held)

    def _sweep(self) -> None:
        now = time.monotonic()
        for study in [name for name, held in self._held.items() if held.expires <= now]:
            self._release(study)

    def _release(self, study: str) -> None:
        held = self._held.pop(study)
        with contextlib.suppress(Exception):  # a lost connection released the database's lock with it
            held.lock.close()


class LocksExhausted(Exception):
    """The proxy grants no more study locks at once (answered RESOURCE_EXHAUSTED)."""


def _service(storage: Any, url: str, locks: StudyLocks) -> Any:
    """`tuner.StudyProxy`'s handlers (see tuner.storage.proxy)."""
    import grpc

    sweeper = threading.Thread(target=_sweep_forever, args=(locks,), daemon=True)
    sweeper.start()

    def beat(request: dict[str, Any], context: Any) -> dict[str, Any]:
        storage.record_heartbeat(int(request["trial_id"]))
        return {}

    def stale(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"trial_ids": stale_trial_ids(storage, int(request["study_id"]), int(request["grace"]))}

    def lock(request: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            token = locks.acquire(str(request["study"]), str(request["holder"]))
        except LocksExhausted as error:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
        return {"granted": token is not None, "token": token, "lease": locks.lease}

    def renew(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"held": locks.renew(str(request["study"]), str(request["holder"]), int(request.get("token", -1)))}

    def unlock(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"released": locks.release(str(request["study"]), str(request["holder"]), int(request.get("token", -1)))}

    def ping(request: dict[str, Any], context: Any) -> dict[str, Any]:
        if not database_answers(url):
            context.abort(grpc.StatusCode.UNAVAILABLE, f"database {mask_url(url)} does not answer")
        return {}

    handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
        "Ping": ping,
        "Beat": beat,
        "Stale": stale,
        "Lock": lock,
        "Renew": renew,
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


def _sweep_forever(locks: StudyLocks) -> None:
    """Release leases that ran out within a quarter lease, not only when someone asks for their lock."""
    while True:
        time.sleep(locks.lease / 4)
        with contextlib.suppress(Exception):
            locks.sweep()


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


def make_proxy(
    url: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    threads: int = THREADS,
    lease: float = proxy.LOCK_LEASE,
    max_locks: int = proxy.MAX_LOCKS,
) -> tuple[Any, int]:
    """A started proxy server for the database at `url` and the port it listens on (0 picks a free one).

    `lease` and `max_locks` bound its study locks (tests shorten them).
    """
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
    server.add_generic_rpc_handlers((_service(database, url, StudyLocks(url, max_locks, lease)),))
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
