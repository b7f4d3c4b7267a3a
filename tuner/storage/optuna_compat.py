"""Every use of Optuna's private names, in one small module.

Optuna has no public way to reach a study's storage or ids, to ask whether
a storage beats hearts, or to attach an artifact to a trial that has
finished (export runs long after its trial). Its gRPC storage proxy has no
heartbeats, and its server cannot be given more services than the storage's.
The rest of the project goes through these functions; when Optuna changes,
this is the module to mend.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import optuna
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, DEFAULT_MIME_TYPE, ArtifactMeta
from optuna.storages import BaseStorage, GrpcStorageProxy
from optuna.storages._heartbeat import BaseHeartbeat

__all__ = [
    "ARTIFACTS_ATTR_PREFIX",
    "DEFAULT_MIME_TYPE",
    "ArtifactMeta",
    "BaseHeartbeat",
    "HeartbeatGrpcProxy",
    "add_finished_trial_system_attr",
    "add_storage_proxy_service",
    "behind_cache",
    "heartbeat_enabled",
    "heartbeat_stale_ids",
    "hide_rdb_fallback_warning",
    "rdb_backend",
    "stale_trial_ids",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]

_STALE_TRIALS = "_get_stale_trial_ids"  # the heartbeat hook Optuna's fail_stale_trials calls
_stale_guard = threading.Lock()


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """The storage's id of the study."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a running or frozen trial (its number counts within the study only)."""
    return trial._trial_id


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether `storage` records heartbeats (an RDB storage given a heartbeat interval)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def behind_cache(storage: BaseStorage) -> BaseStorage:
    """An RDBStorage behind Optuna's cache of it (what `optuna.create_study` does with one); any other as it is."""
    from optuna.storages._cached_storage import _CachedStorage

    return _CachedStorage(storage) if isinstance(storage, optuna.storages.RDBStorage) else storage


def rdb_backend(storage: BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDBStorage under `storage` (behind a guard, Optuna's cache, or both), or None."""
    inner = getattr(storage, "inner", storage)
    backend = getattr(inner, "_backend", inner)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def add_finished_trial_system_attr(storage: BaseStorage, trial_id: int, key: str, value: Any) -> bool:
    """Add one system attribute to a finished trial, past Optuna's "trial is finished" check.

    Only a relational database can take it (one new row); returns False for
    other storages, which the caller then handles its own way.
    """
    database = rdb_backend(storage)
    if database is None:
        return False
    from optuna.storages._rdb import models

    session = database.scoped_session()
    try:
        session.add(models.TrialSystemAttributeModel(trial_id=trial_id, key=key, value_json=json.dumps(value)))
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        database.scoped_session.remove()
    cache = getattr(storage, "inner", storage)  # behind a guard
    cached = getattr(cache, "_get_cached_trial", lambda _: None)(trial_id)  # the cache keeps finished trials
    if cached is not None:
        cached.system_attrs = {**cached.system_attrs, key: value}
    return True


def heartbeat_stale_ids(storage: BaseStorage, study_id: int, grace: int | None = None) -> list[int]:
    """Ids of the study's RUNNING trials whose heartbeat is older than `grace` seconds (default: the storage's)."""
    if grace is None:
        return list(getattr(storage, _STALE_TRIALS)(study_id))
    inner = getattr(storage, "inner", storage)  # behind a guard
    if isinstance(inner, HeartbeatGrpcProxy):
        return list(inner._stale(study_id, grace))
    judged = getattr(inner, "stale_trial_ids", None)  # a journal's heartbeat files (tuner.storage.journal_heartbeats)
    if judged is not None:
        return list(judged(study_id, grace))
    backend = rdb_backend(storage)
    assert backend is not None, "heartbeats are kept by a relational database, a proxy in front of one, or files"
    return stale_trial_ids(backend, study_id, grace)


def hide_rdb_fallback_warning() -> None:
    """Drop RDBStorage's "Caught an error from sqlalchemy ... Falling back" warning (the failed SQL, many lines).

    The fallback is for SQLite's limit on query variables; on PostgreSQL and
    MySQL it fires only when the connection broke, which the retries report.
    """
    logger = logging.getLogger("optuna.storages._rdb.storage")
    if not any(isinstance(f, _NoFallbackWarning) for f in logger.filters):
        logger.addFilter(_NoFallbackWarning())


class _NoFallbackWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Caught an error from sqlalchemy")


def stale_trial_ids(storage: optuna.storages.RDBStorage, study_id: int, grace: int) -> list[int]:
    """The study's RUNNING trials whose last heartbeat is more than `grace` seconds old, by the database's clock.

    Optuna reads the grace period from the storage; a proxy serves workers
    with their own, so it is set for the one query (one query at a time).
    """
    with _stale_guard:
        saved = storage.grace_period
        storage.grace_period = grace
        try:
            return list(getattr(storage, _STALE_TRIALS)(study_id))
        finally:
            storage.grace_period = saved


def add_storage_proxy_service(server: Any, storage: BaseStorage) -> None:
    """Add Optuna's storage proxy service for `storage` (what run_grpc_proxy_server serves) to a gRPC server."""
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)


class _WithDeadline:
    """A gRPC stub whose every call has a deadline of `timeout` seconds (Optuna's calls have none)."""

    def __init__(self, stub: Any, timeout: float):
        self._stub, self._timeout = stub, timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        return lambda request, **kwargs: method(request, **{"timeout": self._timeout, **kwargs})


class HeartbeatGrpcProxy(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC storage proxy client, with heartbeats that `tuner storage-proxy` keeps in its database.

    Optuna's client has none, so behind it a dead worker's trial would stay
    RUNNING forever; `beat(trial_id)` and `stale(study_id, grace)` reach the
    proxy, which records and reads heartbeats by the database's clock.
    """

    def __init__(
        self,
        host: str,
        port: int,
        beat: Callable[[int], None],
        stale: Callable[[int, int], list[int]],
        interval: int | None,
        grace: int,
        stale_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None,
    ):
        super().__init__(host=host, port=port)
        self._beat, self._stale, self._interval, self._grace = beat, stale, interval, grace
        self._stale_callback = stale_callback

    def _setup(self) -> None:
        """Optuna's channel, stub and cache, each call of the stub with a deadline: a frozen proxy is an outage."""
        import grpc
        from optuna.storages._grpc.auto_generated import api_pb2_grpc
        from optuna.storages._grpc.client import GrpcClientCache

        from tuner.storage.proxy import CALL_TIMEOUT

        self._channel = grpc.insecure_channel(
            f"{self._host}:{self._port}", options=[("grpc.max_receive_message_length", -1)]
        )
        stub: Any = _WithDeadline(api_pb2_grpc.StorageServiceStub(self._channel), CALL_TIMEOUT)
        self._stub = stub
        self._cache = GrpcClientCache(stub)

    def record_heartbeat(self, trial_id: int) -> None:
        """Record that the trial's worker is alive (in the proxy's database, at the database's time)."""
        self._beat(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self._stale(study_id, self._grace)

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between heartbeats; None: no heartbeats (the dashboard, report)."""
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None:
        """What to do with a stale trial once failed (re-queue it)."""
        return self._stale_callback
