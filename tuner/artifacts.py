"""Attach files (model cards, plots) to a trial after it has finished.

Export runs long after a trial is COMPLETE, and Optuna refuses to change a
finished trial, `optuna.artifacts.upload_artifact` included. The artifact's
meta is only a trial system attribute named `artifacts:<id>`, so for a
database storage we write that one row ourselves; then
`optuna.artifacts.get_all_artifact_meta(trial, storage=...)` lists it and
optuna-dashboard shows it on the trial's page, exactly as if the trial had
uploaded it while running.

A journal file cannot take a late trial attribute (its replay drops it), so
there the meta goes where optuna-dashboard also looks for trial artifacts:
the study system attribute `dashboard:artifacts:<trial_id>:<id>`.
`trial_artifacts` reads both places.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, DEFAULT_MIME_TYPE, ArtifactMeta

from tuner.errors import TunerError

DASHBOARD_ARTIFACTS_PREFIX = "dashboard:artifacts:"  # optuna-dashboard's per-trial key in study attrs


def trial_id_of(study: optuna.Study, trial_number: int) -> int:
    """The storage's id of trial `trial_number`; one line of TunerError if there is none."""
    try:
        return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    except KeyError:
        raise TunerError(
            f"study {study.study_name!r} has no trial {trial_number}; "
            f"choose one of 0..{len(study.get_trials(deepcopy=False)) - 1}"
        ) from None


def attach_to_trial(study: optuna.Study, trial_number: int, path, store) -> str:
    """Put the file at `path` into `store` and list it as an artifact of the trial.

    Works on running and finished trials alike; returns the artifact id.
    """
    path = Path(path)
    if not path.is_file():
        raise TunerError(f"cannot attach {path}: no such file; write it before attaching it")
    trial_id = trial_id_of(study, trial_number)
    storage = study._storage
    frozen = storage.get_trial(trial_id)
    if not frozen.state.is_finished():
        return optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=frozen, storage=storage
        )
    mimetype, encoding = mimetypes.guess_type(path.name)
    meta = ArtifactMeta(str(uuid.uuid4()), path.name, mimetype or DEFAULT_MIME_TYPE, encoding)
    with open(path, "rb") as handle:
        store.write(meta.artifact_id, handle)
    value = json.dumps(asdict(meta))  # stored as a JSON string, as upload_artifact does
    database = _rdb_backend(storage)
    if database is not None:
        _insert_trial_system_attr(database, trial_id, ARTIFACTS_ATTR_PREFIX + meta.artifact_id, value)
        _refresh_cached_trial(storage, trial_id, ARTIFACTS_ATTR_PREFIX + meta.artifact_id, value)
    else:
        storage.set_study_system_attr(
            study._study_id, f"{DASHBOARD_ARTIFACTS_PREFIX}{trial_id}:{meta.artifact_id}", value
        )
    return meta.artifact_id


def trial_artifacts(study: optuna.Study, trial_number: int) -> list[ArtifactMeta]:
    """Every artifact of the trial, wherever its meta was written."""
    storage = study._storage
    trial_id = trial_id_of(study, trial_number)
    values = [v for k, v in storage.get_trial_system_attrs(trial_id).items() if k.startswith(ARTIFACTS_ATTR_PREFIX)]
    prefix = f"{DASHBOARD_ARTIFACTS_PREFIX}{trial_id}:"
    values += [v for k, v in storage.get_study_system_attrs(study._study_id).items() if k.startswith(prefix)]
    metas = [json.loads(value) for value in values]
    return [ArtifactMeta(**meta) for meta in metas if meta is not None]  # None marks one deleted in the dashboard


def _rdb_backend(storage):
    """The RDBStorage under `storage` (Optuna wraps it in a cache), or None."""
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def _insert_trial_system_attr(database, trial_id: int, key: str, value: str) -> None:
    """One new row in trial_system_attributes, past Optuna's "trial is finished" check."""
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


def _refresh_cached_trial(storage, trial_id: int, key: str, value: str) -> None:
    """Optuna's storage cache keeps finished trials forever; add the new attribute there too."""
    cached = getattr(storage, "_get_cached_trial", lambda _: None)(trial_id)
    if cached is not None:
        cached.system_attrs = {**cached.system_attrs, key: value}
