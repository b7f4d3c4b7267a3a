"""Every use of Optuna's private names, in one small module.

Optuna has no public way to reach a study's storage or ids, to ask whether
a storage beats hearts, or to attach an artifact to a trial that has
finished (export runs long after its trial). The rest of the project goes
through these functions; when Optuna changes, this is the module to mend.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, DEFAULT_MIME_TYPE, ArtifactMeta
from optuna.storages import BaseStorage

__all__ = [
    "ARTIFACTS_ATTR_PREFIX",
    "DEFAULT_MIME_TYPE",
    "ArtifactMeta",
    "add_finished_trial_system_attr",
    "heartbeat_enabled",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]


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


def _rdb_backend(storage: BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDBStorage under `storage` (Optuna wraps it in a cache), or None."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def add_finished_trial_system_attr(storage: BaseStorage, trial_id: int, key: str, value: Any) -> bool:
    """Add one system attribute to a finished trial, past Optuna's "trial is finished" check.

    Only a relational database can take it (one new row); returns False for
    other storages, which the caller then handles its own way.
    """
    database = _rdb_backend(storage)
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
    cached = getattr(storage, "_get_cached_trial", lambda _: None)(trial_id)  # the cache keeps finished trials
    if cached is not None:
        cached.system_attrs = {**cached.system_attrs, key: value}
    return True
