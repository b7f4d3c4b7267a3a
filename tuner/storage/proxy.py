"""Workers behind `tuner storage-proxy`: the client side of what the proxy serves besides Optuna's storage.

Optuna's gRPC storage proxy lets hundreds of workers share a study over a
handful of database connections (the proxy's). Two things a worker needs are
not in it, so the proxy serves them beside Optuna's service, as the small
JSON-over-gRPC service `tuner.StudyProxy` (tuner.storage.proxy_server):

- heartbeats: `Beat` records one for a trial, `Stale` lists the trials whose
  heartbeat is older than the worker's grace period, both by the database's
  clock, so a dead worker's trial is failed and re-queued as with a direct
  connection;
- the study lock: `Lock` grants it to one holder at a time (the proxy also
  takes the database's lock, so workers connected directly are kept out);
  the others ask again after a short pause, for LOCK_WAIT seconds at most.
  A grant is a lease of LOCK_LEASE seconds with a fencing token: its holder
  renews it (`Renew`) while the `with` block runs; a holder that dies or
  freezes loses it after the lease, and its late `Renew` or `Unlock` is
  refused by the token, so it never renews or releases a later holder's
  lock. The proxy grants at most MAX_LOCKS locks at once (each holds a
  database connection); beyond that it refuses with RESOURCE_EXHAUSTED,
  which workers wait out like an outage.

Every call has a deadline (CALL_TIMEOUT), Optuna's storage calls too
(tuner.storage.optuna_compat): a proxy that freezes is an outage
(DEADLINE_EXCEEDED), like one that is down.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from tuner.core.errors import TunerError
from tuner.storage.timeouts import CLIENT_MARGIN, LOCK_WAIT, STATEMENT_TIMEOUT
from tuner.storage.urls import CONNECT_TIMEOUT  # seconds to reach the proxy, as a database

SERVICE = "tuner.StudyProxy"
METHODS = ("Ping", "Beat", "Stale", "Lock", "Renew", "Unlock")
LOCK_LEASE = 15.0  # seconds a grant lasts unless its holder renews it
MAX_LOCKS = 64  # study locks granted at once (each holds one database connection in the proxy)
CALL_TIMEOUT = 2 * (STATEMENT_TIMEOUT + CLIENT_MARGIN)  # seconds a call may take: the proxy's own database call, twice


def encode(message: dict[str, Any]) -> bytes:
    """A message on the wire: JSON."""
    return json.dumps(message).encode()


def decode(data: bytes) -> dict[str, Any]:
    """A message off the wire."""
    return dict(json.loads(data))


class ProxyClient:
    """Calls to `tuner.StudyProxy` at host:port, over a channel of its own."""

    def __init__(self, host: str, port: int):
        import grpc

        self.host, self.port = host, port
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        self._calls = {
            name: self.channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=encode, response_deserializer=decode)
            for name in METHODS
        }

    def call(self, method: str, timeout: float = CALL_TIMEOUT, **message: Any) -> dict[str, Any]:
        """One call; gRPC's RpcError when the proxy cannot answer (UNAVAILABLE: it, or its database, is down;
        DEADLINE_EXCEEDED: it is frozen)."""
        return self._calls[method](message, timeout=timeout)

    def check(self, shown: str) -> None:
        """Fail in one line unless a `tuner storage-proxy` answers at the address."""
        import grpc

        try:
            grpc.channel_ready_future(self.channel).result(timeout=CONNECT_TIMEOUT)
        except grpc.FutureTimeoutError:
            raise TunerError(
                f"no storage proxy answers at {shown} within {CONNECT_TIMEOUT:g}s; "
                "start one with 'tuner storage-proxy --storage DATABASE_URL' or check --storage"
            ) from None
        try:
            self.call("Ping", timeout=CONNECT_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise TunerError(
                    f"the storage proxy at {shown} cannot reach its database ({error.details()}); "
                    "check the database, or the --storage URL the proxy was started with"
                ) from None
            raise TunerError(
                f"{shown} is an Optuna storage proxy without heartbeats or study lock; "
                "serve the database with 'tuner storage-proxy --storage DATABASE_URL' instead"
            ) from None

    def beat(self, trial_id: int) -> None:
        """Record a heartbeat of the trial."""
        self.call("Beat", trial_id=trial_id)

    def stale(self, study_id: int, grace: int) -> list[int]:
        """The study's running trials without a heartbeat for `grace` seconds."""
        return [int(trial_id) for trial_id in self.call("Stale", study_id=study_id, grace=grace)["trial_ids"]]

    @contextlib.contextmanager
    def lock(self, study_name: str, wait: float = LOCK_WAIT) -> Iterator[bool]:
        """The study's lock, granted by the proxy, for the `with` block (True), or False after `wait` seconds.

        While held, a thread renews the lease; a lease lost meanwhile (this
        process froze past it) is not renewed again, nor released.
        """
        holder, pause = uuid.uuid4().hex, 0.01
        deadline = time.monotonic() + wait
        while not (granted := self.call("Lock", study=study_name, holder=holder))["granted"]:
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(min(pause * random.uniform(0.5, 1.5), max(0.0, deadline - time.monotonic())))
            pause = min(2 * pause, 0.2)
        token, lease, done = int(granted["token"]), float(granted.get("lease", LOCK_LEASE)), threading.Event()
        renewer = threading.Thread(target=self._renew, args=(study_name, holder, token, lease, done), daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            with contextlib.suppress(Exception):  # a proxy that went away took the lock with it (or the lease will)
                self.call("Unlock", study=study_name, holder=holder, token=token)

    def _renew(self, study_name: str, holder: str, token: int, lease: float, done: threading.Event) -> None:
        """Renew the lease every third of it until `done`, or until the proxy says it is no longer ours."""
        while not done.wait(lease / 3):
            with contextlib.suppress(Exception):  # a call that fails is tried again at the next third
                if not self.call("Renew", study=study_name, holder=holder, token=token)["held"]:
                    return


_clients: dict[tuple[str, int], ProxyClient] = {}


def client_for(host: str, port: int) -> ProxyClient:
    """One client (one channel) per proxy address in this process."""
    if (host, port) not in _clients:
        _clients[(host, port)] = ProxyClient(host, port)
    return _clients[(host, port)]


def open_proxy_storage(host: str, port: int, heartbeat: bool, beats: tuple[int, int, int], shown: str) -> Any:
    """Optuna's gRPC storage client for a `tuner storage-proxy`, with heartbeats when `heartbeat`.

    `beats` is (interval, grace, max_retry) as for a database.
    """
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from tuner.storage.optuna_compat import HeartbeatGrpcProxy

    client = client_for(host, port)
    client.check(shown)
    interval, grace, max_retry = beats
    return HeartbeatGrpcProxy(
        host,
        port,
        beat=client.beat,
        stale=client.stale,
        interval=interval if heartbeat else None,
        grace=grace,
        stale_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat else None,
    )
