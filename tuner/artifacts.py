"""Attach a file to a trial as an Optuna artifact, even after the trial has finished.

Optuna lists a trial's artifacts from its system attributes: one key
`artifacts:<id>` per file, holding the JSON of an `ArtifactMeta`
(optuna/artifacts/_upload.py; read back by `get_all_artifact_meta` and by
optuna-dashboard's trial page). `optuna.artifacts.upload_artifact` writes that
key with `storage.set_trial_system_attr`, which every storage guards with
`BaseStorage.check_trial_is_updatable`: a finished trial raises
`UpdateFinishedTrialError`. Export runs after the study, so its trials are
always finished.

The choice, and why: for a trial still running we call the public
`upload_artifact` unchanged. For a finished trial we call the storage's own
public `set_trial_system_attr` with exactly the record `upload_artifact`
would write, and silence only the "is it updatable" guard, on that one
storage object, for that one call. The write then goes through Optuna's own
upsert code for SQLite, PostgreSQL and MySQL (no SQL of ours, no private
table models), the record is byte-for-byte what Optuna writes itself, and if
a future Optuna guards elsewhere we notice (`UpdateFinishedTrialError`) and
fall back instead of corrupting anything.

A journal storage cannot hold such a record: every reader replays the log and
drops writes to finished trials. There, and in that fallback, the file is
uploaded to the study instead (`upload_artifact(study_or_trial=study)`, fully
public) under a name that starts with `trial-<number>-`.

An in-process `Study` caches finished trials: reload the study (or open the
storage again) to see artifacts attached after it was loaded.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import uuid
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, DEFAULT_MIME_TYPE, ArtifactMeta
from optuna.exceptions import UpdateFinishedTrialError


def _backend(storage):
    """The storage under Optuna's read cache (`_CachedStorage` wraps an RDBStorage)."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


@contextlib.contextmanager
def _finished_trial_writable(storage):
    """Skip `check_trial_is_updatable` on this storage object only, for one write."""
    storage.check_trial_is_updatable = lambda trial_id, trial_state: None
    try:
        yield
    finally:
        del storage.check_trial_is_updatable  # the class' method is visible again


def _meta(path: Path) -> ArtifactMeta:
    mimetype, encoding = mimetypes.guess_type(path.name)
    return ArtifactMeta(str(uuid.uuid4()), path.name, mimetype or DEFAULT_MIME_TYPE, encoding)


def _upload_to_study(study: optuna.Study, trial_number: int, path: Path, store) -> str:
    renamed = path.with_name(f"trial-{trial_number}-{path.name}")
    source = path if path.name.startswith(f"trial-{trial_number}") else renamed
    if source is renamed:
        renamed.write_bytes(path.read_bytes())
    try:
        return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(source), study_or_trial=study)
    finally:
        if source is renamed:
            renamed.unlink()


def attach_to_trial(study: optuna.Study, trial_number: int, path, store) -> str:
    """Upload `path` to `store` and list it on trial `trial_number`; returns the artifact id."""
    path = Path(path)
    trial = study.get_trials(deepcopy=False)[trial_number]
    storage = study._storage
    if not trial.state.is_finished():
        return optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=trial, storage=storage
        )
    backend = _backend(storage)
    if isinstance(backend, optuna.storages.JournalStorage):
        return _upload_to_study(study, trial_number, path, store)
    meta = _meta(path)
    with open(path, "rb") as handle:  # the file first: a listed artifact always exists
        store.write(meta.artifact_id, handle)
    try:
        with _finished_trial_writable(backend):
            backend.set_trial_system_attr(trial._trial_id, ARTIFACTS_ATTR_PREFIX + meta.artifact_id, json.dumps(asdict(meta)))
    except UpdateFinishedTrialError:
        store.remove(meta.artifact_id)
        return _upload_to_study(study, trial_number, path, store)
    return meta.artifact_id
