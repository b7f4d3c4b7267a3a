"""Attach files (model cards, plots) to a trial, also after it has finished.

Export runs long after a trial is COMPLETE, and Optuna refuses to change a
finished trial, `optuna.artifacts.upload_artifact` included. An artifact's
meta is only a trial system attribute named `artifacts:<id>`; for a
database storage that row is added through tuner.storage.optuna_compat, and
then `optuna.artifacts.get_all_artifact_meta(trial, storage=...)` lists it
and optuna-dashboard shows it on the trial's page, as if the trial had
uploaded it while running.

A journal file cannot take a late trial attribute (its replay drops it), so
there the meta goes where optuna-dashboard also looks for trial artifacts:
the study system attribute `dashboard:artifacts:<trial_id>:<id>`.
`trial_artifacts` reads both places. A trial lists each file name once:
attaching a file of a name it already has replaces that artifact's content.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna

from tuner.core.errors import TunerError
from tuner.storage.optuna_compat import (
    ARTIFACTS_ATTR_PREFIX,
    DEFAULT_MIME_TYPE,
    ArtifactMeta,
    add_finished_trial_system_attr,
    storage_of,
    study_id_of,
)

DASHBOARD_ARTIFACTS_PREFIX = "dashboard:artifacts:"  # optuna-dashboard's per-trial key in study attrs


def trial_id_for(study: optuna.Study, trial_number: int) -> int:
    """The storage's id of trial `trial_number`; one line of TunerError if there is none."""
    try:
        return storage_of(study).get_trial_id_from_study_id_trial_number(study_id_of(study), trial_number)
    except KeyError:
        raise TunerError(
            f"study {study.study_name!r} has no trial {trial_number}; "
            f"choose one of 0..{len(study.get_trials(deepcopy=False)) - 1}"
        ) from None


def _digest(handle: Any) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _stored_digest(store: Any, artifact_id: str) -> str | None:
    """The SHA-256 of what `store` holds under `artifact_id`, or None when it holds nothing readable there."""
    try:
        with store.open_reader(artifact_id) as reader:
            return _digest(reader)
    except Exception:  # the store's own "not found" (each store has its own exception)
        return None


def _replace_content(store: Any, artifact_id: str, path: Path) -> str:
    """Store the file at `path` as artifact `artifact_id` (unless it holds that already); returns the id."""
    with open(path, "rb") as handle:
        changed = _digest(handle) != _stored_digest(store, artifact_id)
    if changed:
        with open(path, "rb") as handle:
            store.write(artifact_id, handle)
    return artifact_id


def attach_to_study(study: optuna.Study, path: str | Path, store: Any) -> str:
    """Put the file at `path` into `store` as an artifact of the study, once per file name; returns the id."""
    path = Path(path)
    same_name = [meta for meta in optuna.artifacts.get_all_artifact_meta(study) if meta.filename == path.name]
    if same_name:
        return _replace_content(store, same_name[0].artifact_id, path)
    return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)


def attach_to_trial(study: optuna.Study, trial_number: int, path: str | Path, store: Any) -> str:
    """Put the file at `path` into `store` and list it as an artifact of the trial; returns the artifact id.

    Works on running and finished trials alike. A trial lists each file name once: when it already has an
    artifact of this name (a re-export), that artifact's content is replaced (left alone when identical) and
    its id returned, so exporting again never attaches the same card or plot twice.
    """
    path = Path(path)
    if not path.is_file():
        raise TunerError(f"cannot attach {path}: no such file; write it before attaching it")
    same_name = [meta for meta in trial_artifacts(study, trial_number) if meta.filename == path.name]
    if same_name:
        return _replace_content(store, same_name[0].artifact_id, path)
    trial_id = trial_id_for(study, trial_number)
    storage = storage_of(study)
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
    if not add_finished_trial_system_attr(storage, trial_id, ARTIFACTS_ATTR_PREFIX + meta.artifact_id, value):
        storage.set_study_system_attr(
            study_id_of(study), f"{DASHBOARD_ARTIFACTS_PREFIX}{trial_id}:{meta.artifact_id}", value
        )
    return meta.artifact_id


def trial_artifacts(study: optuna.Study, trial_number: int) -> list[ArtifactMeta]:
    """Every artifact of the trial, wherever its meta was written."""
    storage = storage_of(study)
    trial_id = trial_id_for(study, trial_number)
    values = [v for k, v in storage.get_trial_system_attrs(trial_id).items() if k.startswith(ARTIFACTS_ATTR_PREFIX)]
    prefix = f"{DASHBOARD_ARTIFACTS_PREFIX}{trial_id}:"
    values += [v for k, v in storage.get_study_system_attrs(study_id_of(study)).items() if k.startswith(prefix)]
    metas = [json.loads(value) for value in values]
    return [ArtifactMeta(**meta) for meta in metas if meta is not None]  # None marks one deleted in the dashboard
