"""Study definitions: a TOML file (or a bundled name) plus command-line overrides -> a validated StudyConfig.

Study files live in `studies/` (found from a checkout and from an installed
wheel alike); any other `.toml` path works too. TOML sections ([data],
[validation], ...) are for people: every key may stand in any section. A
space file that a study file names (`space = "my_space.py"`) is found
relative to the study file.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig, is_space_file, safe_study_name, settings

FOLDER_PREFIX = "folder:"


def study_files() -> dict[str, Path]:
    """The bundled study definitions by name."""
    folder = resources.files("studies")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise TunerError(f"cannot read study file {path}: {error.strerror}; check the path") from None
    except tomllib.TOMLDecodeError as error:
        raise TunerError(f"study file {path} is not valid TOML ({error}); fix the file") from None


def _flatten(document: dict[str, Any], path: Path) -> dict[str, Any]:
    known = {name for name, _ in settings()}
    flat: dict[str, Any] = {}
    for key, value in document.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for name, item in items:
            if name not in known:
                raise TunerError(f"study file {path}: unknown setting {name!r}; known: {', '.join(sorted(known))}")
            flat[name] = item
    return flat


def load_study_config(study: str, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Resolve a study name, a `.toml` path or `folder:PATH`; apply overrides (None = not given); validate.

    Raises TunerError, naming the problem and the fix, for an unknown study,
    an unreadable file, an unknown key or a bad value.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if study.startswith(FOLDER_PREFIX):  # `tuner folder:PATH`: a default study on an image folder
        name = safe_study_name("folder-" + (Path(study[len(FOLDER_PREFIX) :]).expanduser().resolve().name or "images"))
        return StudyConfig(**{"name": name, "dataset": study, **given}).validate()
    bundled = study_files()
    if study in bundled:
        path = bundled[study]
    elif study.endswith(".toml"):
        path = Path(study)
    else:
        raise TunerError(f"unknown study {study!r}; choose one of {', '.join(sorted(bundled))} or give a .toml file")
    from_file = _flatten(_read_toml(path), path)
    space = from_file.get("space")
    if isinstance(space, str) and is_space_file(space):  # a study file's own space file sits beside it
        from_file["space"] = str(path.parent / Path(space).expanduser())
    values = {"name": safe_study_name(path.stem), **from_file, **given}
    return StudyConfig(**values).validate()
