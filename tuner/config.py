"""Study definitions: a TOML file -> a typed, validated StudyConfig.

Study files live in `studies/` (found from a checkout and from an installed
wheel alike); any other `.toml` path works too. Command-line flags override
the file. Every check here raises TunerError with the fix in the message.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tuner.errors import TunerError

SAMPLERS = ("tpe", "random", "gp", "cmaes", "nsga2")
PRUNERS = ("hyperband", "median", "successive-halving", "wilcoxon", "none")
OBJECTIVES = ("accuracy", "time", "params")


@dataclass
class StudyConfig:
    """Everything a study needs; field names match the TOML keys and the CLI flags."""

    name: str
    dataset: str = "fashion"
    data_dir: str | None = None
    subset: int = 0
    space: str = "cnn"
    folds: int = 5
    repeats: int = 1
    epochs: int = 10
    early_stopping: int = 0  # patience in epochs; 0 = off
    seed: int = 42
    sampler: str = "tpe"
    pruner: str = "hyperband"
    trials: int = 20
    timeout: float | None = None  # seconds
    baselines: list[str] | bool = True  # True: every baseline that fits; list: these by name
    objectives: list[str] = field(default_factory=lambda: ["accuracy"])
    max_gap: float | None = None
    description: str = ""
    # export's final training (tuner export / --export-top): search cheaply, train the winner fully
    final_subset: int | None = None  # training images for the final model; None = the study's subset, 0 = all
    final_epochs: int = 0  # epochs of the final training; 0 = the rounded mean of the folds' best epochs
    final_budget: float | None = None  # seconds per final training: fewer epochs if the trial's speed says so
    # image folders, augmentation, class weights, pretrained starts (README: "Your own images")
    image_size: int | list[int] = 0  # side in pixels; 0 = auto; a list: the space tunes among them
    color_mode: str = "auto"  # "auto", "grayscale" or "rgb"
    streaming: bool | str = "auto"  # read images from disk per batch: true, false, or "auto" (large folders)
    augmentation: str | list[str] = "auto"  # "auto" (what suits the data), "off", or kinds to tune
    class_weights: bool | str = "auto"  # tune class weights: true, false, or "auto" (when classes are unbalanced)
    pretrained: str | None = None  # a folder written by `tuner pretrain`: trials start their conv layers from it

    # Fields that change what a trial's value means: a study cannot continue with others.
    COMPARABLE = ("dataset", "subset", "space", "folds", "repeats", "epochs", "seed", "objectives", "max_gap",
                  "image_size", "color_mode", "pretrained")

    def comparable(self) -> dict:
        return {name: getattr(self, name) for name in self.COMPARABLE}

    def validate(self) -> "StudyConfig":
        def positive(name: str, minimum: int = 1):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise TunerError(f"{name} must be a whole number >= {minimum}, got {value!r}; fix --{name.replace('_', '-')} or the study file")

        positive("trials")
        positive("epochs")
        positive("repeats")
        positive("folds", 2)
        positive("final_epochs", 0)
        if self.final_subset is not None:
            positive("final_subset", 0)
        if self.subset < 0:
            raise TunerError(f"--subset must be 0 (all) or a positive count, got {self.subset}")
        if self.final_budget is not None and (
            isinstance(self.final_budget, bool) or not isinstance(self.final_budget, (int, float)) or not self.final_budget > 0
        ):
            raise TunerError(f"final_budget must be a positive number of seconds, got {self.final_budget!r}; fix --final-budget or the study file")
        if self.timeout is not None and self.timeout <= 0:
            raise TunerError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.sampler not in SAMPLERS:
            raise TunerError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise TunerError(f"unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        if isinstance(self.objectives, str):  # "accuracy,time" from the command line or the study file
            self.objectives = [name.strip() for name in self.objectives.split(",") if name.strip()]
        if not isinstance(self.objectives, list):
            self.objectives = [str(self.objectives)]  # reported as bad objectives just below
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not 1 <= len(self.objectives) <= 2 or self.objectives[0] != "accuracy" or len(set(self.objectives)) != len(self.objectives):
            raise TunerError(
                f"bad objectives {','.join(self.objectives)!r}; use accuracy, accuracy,time or accuracy,params"
            )
        self._validate_objectives_and_gap()
        self._validate_images()
        return self

    def _validate_objectives_and_gap(self) -> None:
        """--max-gap is a number; CMA-ES can neither weigh two objectives nor honour a constraint."""
        if self.max_gap is not None:
            if isinstance(self.max_gap, bool) or not isinstance(self.max_gap, (int, float)) or not math.isfinite(self.max_gap):
                raise TunerError(f"--max-gap must be a finite number (val loss - train loss), got {self.max_gap!r}; fix --max-gap or the study file")
            self.max_gap = float(self.max_gap)
        if self.sampler == "cmaes" and (len(self.objectives) > 1 or self.max_gap is not None):
            raise TunerError(
                "the cmaes sampler cannot optimise two objectives or honour --max-gap; use --sampler tpe, gp or nsga2"
            )

    def _validate_images(self) -> None:
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        if not sizes or any(not isinstance(s, int) or isinstance(s, bool) or (s != 0 and s < 8) for s in sizes) or (
            len(sizes) > 1 and 0 in sizes
        ):
            raise TunerError(f"image_size must be 0 (auto), a side of at least 8 pixels, or a list of sides, got {self.image_size!r}; fix the study file")
        if self.color_mode not in ("auto", "grayscale", "rgb"):
            raise TunerError(f"color_mode must be auto, grayscale or rgb, got {self.color_mode!r}; fix the study file")
        if self.streaming not in (True, False, "auto"):
            raise TunerError(f"streaming must be true, false or \"auto\", got {self.streaming!r}; fix the study file")
        if self.class_weights not in (True, False, "auto"):
            raise TunerError(f"class_weights must be true, false or \"auto\", got {self.class_weights!r}; fix the study file")
        from tuner.augmentation import KINDS

        kinds = self.augmentation
        if not (kinds in ("auto", "off") or (isinstance(kinds, list) and set(kinds) <= set(KINDS))):
            raise TunerError(f"augmentation must be \"auto\", \"off\" or a list of {', '.join(KINDS)}, got {kinds!r}; fix the study file")

    def folder_options(self) -> dict:
        """Keyword arguments for loading an image folder (none for the built-in data sets)."""
        if not (self.dataset.startswith("folder:") or self.dataset == "folder"):
            return {}
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        return {"image_size": max(sizes), "color_mode": self.color_mode, "streaming": self.streaming}


def study_files() -> dict[str, Path]:
    """The bundled study definitions by name."""
    folder = resources.files("studies")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise TunerError(f"cannot read study file {path}: {error.strerror}; check the path") from None
    except tomllib.TOMLDecodeError as error:
        raise TunerError(f"study file {path} is not valid TOML ({error}); fix the file") from None


def _flatten(document: dict, path: Path) -> dict:
    """TOML sections ([data], [validation], ...) are for people; the config is flat."""
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    flat: dict = {}
    for key, value in document.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for name, item in items:
            if name not in fields:
                raise TunerError(f"study file {path}: unknown setting {name!r}; known: {', '.join(sorted(fields))}")
            flat[name] = item
    return flat


def load_study_config(study: str, overrides: dict | None = None) -> StudyConfig:
    """Resolve a study name or TOML path, apply CLI overrides, validate."""
    bundled = study_files()
    if study.startswith("folder:"):  # `tuner folder:PATH`: a default study on an image folder
        name = "folder-" + (Path(study[len("folder:"):]).expanduser().resolve().name or "images")
        values = {"name": name, "dataset": study}
        values.update({key: value for key, value in (overrides or {}).items() if value is not None})
        return StudyConfig(**values).validate()
    if study in bundled:
        path = bundled[study]
    elif study.endswith(".toml"):
        path = Path(study)
    else:
        raise TunerError(
            f"unknown study {study!r}; choose one of {', '.join(sorted(bundled))} or give a .toml file"
        )
    values = _flatten(_read_toml(path), path)
    values.setdefault("name", path.stem)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    try:
        config = StudyConfig(**values)
    except TypeError as error:
        raise TunerError(f"study file {path}: {error}") from None
    return config.validate()
