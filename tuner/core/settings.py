"""A study's settings, defined once: study-file keys, command-line flags and worker flags.

Every field of `StudyConfig` carries a `Setting`: where it goes in a study
file, its help text, whether it has a command-line flag (and on which
commands), whether it is part of the study's identity (a resumed study must
keep it), and its `Kind`, which parses a flag, checks a value from either
source with one line naming the fix, and writes the value back as a flag
for worker processes. The CLI, local workers and study files all read these
fields; a new setting cannot be forgotten in one of them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.core.durations import format_duration, parse_duration
from tuner.core.errors import TunerError
from tuner.core.spec import AUGMENTATION_KINDS

# The one list of sampler and pruner names: the settings check them here, and tuner.search.samplers' registries
# build each of them (and refuse any other), so core stays free of Optuna.
SAMPLERS = ("tpe", "random", "gp", "cmaes", "nsga2")
PRUNERS = ("hyperband", "median", "successive-halving", "wilcoxon", "none")
SPACE_FILE_SUFFIX = ".py"  # a `space` ending so is a file of the user's own (docs/own-space.md), not a registered name
OBJECTIVES = ("accuracy", "time", "params", "latency")
COLOR_MODES = ("auto", "grayscale", "rgb")
TEST_TIME_FLIPS = ("off", "auto")  # auto: the flips each model trained with (tuner.results.mirrors)
# The formats an exported model is written in; tuner.results.formats writes and checks each of them. Keras' own
# format is always written (predict, ensembles and the card read it).
EXPORT_FORMATS = ("keras", "saved_model", "onnx", "litert")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")  # "auto": mixed_bfloat16 on a GPU fast at it, else float32
OUTAGE_LIMIT = 300.0  # seconds a run or a worker waits for an unreachable database before it gives up
RUN, WORKER, EXPORT = "run", "worker", "export"
MLFLOW_LOCAL = "local"  # --mlflow-tracking-uri local: MLflow's local store, the SQLite file below in the working folder
MLFLOW_DB = "mlflow.db"


def _fix(name: str, flag: bool) -> str:
    return f"fix --{name.replace('_', '-')} or the study file" if flag else "fix the study file"


class Kind:
    """How one setting is parsed from a flag, checked, and written back as a flag."""

    metavar: str | None = None
    bare = False  # a flag without a value (--name), that turns the setting on

    def parse(self, text: str) -> Any:
        """A flag's text -> a value (checked later by `check`, like a study file's)."""
        return text

    def check(self, name: str, value: Any, flag: bool) -> Any:
        """The value, normalised; TunerError naming the setting and the fix when it is bad."""
        return value

    def format(self, value: Any) -> str:
        """The value as flag text that `parse` reads back."""
        return str(value)

    def identify(self, value: Any) -> Any:
        """What the study stores of the value to recognise it when resumed (the value itself, mostly)."""
        return value

    def as_flag(self, flag: str, value: Any) -> list[str]:
        """The value as command-line words: the flag and its text."""
        return [flag, self.format(value)]


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Whole(Kind):
    """A whole number of at least `minimum` (None allowed when `optional`)."""

    metavar = "N"

    def __init__(self, minimum: int, optional: bool = False, meaning: str = ""):
        self.minimum, self.optional, self.meaning = minimum, optional, meaning

    def parse(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise TunerError(f"{text!r} is not a whole number") from None

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value is None and self.optional:
            return None
        if not _is_whole(value) or value < self.minimum:
            meaning = f" ({self.meaning})" if self.meaning else ""
            raise TunerError(f"{name} must be a whole number >= {self.minimum}{meaning}, got {value!r}; {_fix(name, flag)}")
        return value


class Number(Kind):
    """A finite number; `positive` demands > 0; None allowed when `optional`."""

    metavar = "X"

    def __init__(self, positive: bool = False, optional: bool = True, unit: str = ""):
        self.positive, self.optional, self.unit = positive, optional, unit

    def parse(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise TunerError(f"invalid float value: {text!r}") from None

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value is None and self.optional:
            return None
        if not _is_number(value) or not math.isfinite(value) or (self.positive and value <= 0):
            what = "a positive number" if self.positive else "a finite number"
            raise TunerError(f"{name} must be {what}{self.unit}, got {value!r}; {_fix(name, flag)}")
        return float(value)


class Duration(Kind):
    """A wall-clock duration: seconds, or text such as 90s, 15m, 1h, 1h30m."""

    metavar = "DURATION"

    def parse(self, text: str) -> float:
        return parse_duration(text)

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = parse_duration(value)
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise TunerError(f"{name} must be a positive duration such as 90s, 15m or 1h, got {value!r}; {_fix(name, flag)}")
        return float(value)

    def format(self, value: Any) -> str:
        return format_duration(value)


class Choice(Kind):
    """One of fixed names."""

    def __init__(self, choices: Sequence[str]):
        self.choices = tuple(choices)
        self.metavar = "|".join(self.choices)

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value not in self.choices:
            raise TunerError(f"unknown {name.replace('_', ' ')} {value!r}; choose one of {', '.join(self.choices)}")
        return value


class Text(Kind):
    """Free text (a path, a name); None allowed."""

    metavar = "TEXT"

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value is not None and not isinstance(value, str):
            raise TunerError(f"{name} must be text, got {value!r}; {_fix(name, flag)}")
        return value


def is_space_file(space: str) -> bool:
    """Whether the `space` setting names a file of the user's own rather than a registered space."""
    return space.endswith(SPACE_FILE_SUFFIX)


class SpaceName(Kind):
    """A registered space's name, or the path of a .py file that defines a space (made absolute for workers).

    The study stores a file space by the file's name, not its folder, so that a
    study can be resumed from another folder or machine with the same file.
    """

    metavar = "NAME|FILE.py"

    def parse(self, text: str) -> str:
        return self.check("space", text, True)

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if not isinstance(value, str) or not value:
            raise TunerError(f"{name} must be a space's name or a .py file's path, got {value!r}; {_fix(name, flag)}")
        return str(Path(value).expanduser().resolve()) if is_space_file(value) else value

    def identify(self, value: Any) -> Any:
        return Path(value).name if is_space_file(value) else value


STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def safe_study_name(text: str) -> str:
    """`text` (a file or folder name) made into a valid study name: other characters become '-'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:100]
    return name or "study"


class StudyName(Kind):
    """A study's name: it names folders (exports/NAME) and shows in every line, so plain characters only."""

    metavar = "NAME"

    def parse(self, text: str) -> str:
        return self.check("study_name", text, True)

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if not isinstance(value, str) or not STUDY_NAME.fullmatch(value):
            raise TunerError(
                f"study name {value!r} is not usable: use 1 to 100 letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit; {'fix --study-name' if flag else 'fix the study file'}"
            )
        return value


class Objectives(Kind):
    """accuracy, or accuracy and one of time, params, latency: a list in the study file, commas on the command line."""

    metavar = "accuracy[,time|,params|,latency]"

    def parse(self, text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def check(self, name: str, value: Any, flag: bool) -> Any:
        names = self.parse(value) if isinstance(value, str) else value
        if (
            not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
            or not 1 <= len(names) <= 2
            or names[0] != "accuracy"
            or len(set(names)) != len(names)
            or any(n not in OBJECTIVES for n in names)
        ):
            shown = ",".join(map(str, names)) if isinstance(names, list) else names
            raise TunerError(f"bad objectives {shown!r}; use accuracy, accuracy,time, accuracy,params or accuracy,latency")
        return names

    def format(self, value: Any) -> str:
        return ",".join(value)


class Baselines(Kind):
    """Which hand-made baselines to enqueue: all (true), none (false), or names."""

    metavar = "all|none|NAME,NAME"

    def parse(self, text: str) -> bool | list[str]:
        if text == "all":
            return True
        if text == "none":
            return False
        return [part.strip() for part in text.split(",") if part.strip()]

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if isinstance(value, bool) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise TunerError(f"baselines must be true, false or a list of names, got {value!r}; {_fix(name, flag)}")

    def format(self, value: Any) -> str:
        return "all" if value is True else "none" if value is False else ",".join(value)


class ImageSize(Kind):
    """0 (the most common side), one side of at least 8 pixels, or a list of sides to tune."""

    def check(self, name: str, value: Any, flag: bool) -> Any:
        sizes = value if isinstance(value, list) else [value]
        if not sizes or any(not _is_whole(s) or (s != 0 and s < 8) for s in sizes) or (len(sizes) > 1 and 0 in sizes):
            raise TunerError(
                "image_size must be 0 (auto), a side of at least 8 pixels, or a list of sides, "
                f"got {value!r}; fix the study file"
            )
        return value


class AutoSwitch(Kind):
    """true, false or "auto"."""

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if not (isinstance(value, bool) or value == "auto"):
            raise TunerError(f'{name} must be true, false or "auto", got {value!r}; fix the study file')
        return value


class Switch(Kind):
    """On or off: true or false in the study file, a bare flag (--name) that turns it on."""

    bare = True

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if not isinstance(value, bool):
            raise TunerError(f"{name} must be true or false, got {value!r}; {_fix(name, flag)}")
        return value

    def as_flag(self, flag: str, value: Any) -> list[str]:
        return [flag] if value else []


class AugmentationKinds(Kind):
    """ "auto" (what suits the data), "off", or a list of kinds to tune."""

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value in ("auto", "off") or (
            isinstance(value, list) and all(isinstance(k, str) for k in value) and set(value) <= set(AUGMENTATION_KINDS)
        ):
            return value
        raise TunerError(
            f'augmentation must be "auto", "off" or a list of {", ".join(AUGMENTATION_KINDS)}, '
            f"got {value!r}; fix the study file"
        )


class ExportFormats(Kind):
    """Formats of the exported models: a list in the study file, commas on the command line; keras always first."""

    metavar = ",".join(EXPORT_FORMATS)

    def parse(self, text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    def check(self, name: str, value: Any, flag: bool) -> Any:
        names = self.parse(value) if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TunerError(
                f"{name} must be a list of formats ({', '.join(EXPORT_FORMATS)}), got {value!r}; {_fix(name, flag)}"
            )
        unknown = [n for n in names if n not in EXPORT_FORMATS]
        if unknown:
            raise TunerError(f"unknown export format {unknown[0]!r}; choose among {', '.join(EXPORT_FORMATS)}")
        return [n for n in EXPORT_FORMATS if n == "keras" or n in names]  # one order, no repeats

    def format(self, value: Any) -> str:
        return ",".join(value)


class TrackingUri(Kind):
    """An MLflow tracking URI, or "local": ./mlflow.db (SQLite, MLflow 3's local store; its ./mlruns files are refused).

    "local" is made absolute, so that workers started elsewhere log to the same file.
    """

    metavar = "URI|local"

    def parse(self, text: str) -> str:
        return self.check("mlflow_tracking_uri", text, True)

    def check(self, name: str, value: Any, flag: bool) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise TunerError(f"{name} must be a tracking URI or 'local' (./mlflow.db), got {value!r}; {_fix(name, flag)}")
        return f"sqlite:///{Path(MLFLOW_DB).resolve()}" if value == MLFLOW_LOCAL else value


@dataclass(frozen=True)
class Setting:
    """What the project knows of one setting, besides its name and default."""

    section: str  # the study file's section people write it under (any section is accepted)
    help: str
    kind: Kind = field(default_factory=Kind)
    flag: bool = True  # a command-line flag --name-with-dashes
    commands: tuple[str, ...] = (RUN, WORKER)  # the commands that take the flag
    identity: bool = False  # part of what the study's values mean: a resumed study must keep it
    aliases: tuple[str, ...] = ()  # other flags for it, such as --format


def setting(default: Any, section: str, help: str, kind: Kind | None = None, *, factory: Any = None, **options: Any) -> Any:
    """A dataclass field of StudyConfig with its Setting in the field's metadata."""
    meta = {"setting": Setting(section, help, kind or Kind(), **options)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class StudyConfig:
    """Everything a study needs. Field names are the study-file keys and, with dashes, the flags."""

    name: str = setting(
        "study", "top", "the study's name in the storage (default: the study file's name)", StudyName(), flag=False
    )
    description: str = setting("", "top", "what the study is for (shown in the dashboard)", Text(), flag=False)
    # what to learn from
    dataset: str = setting(
        "fashion", "data", "fashion, mnist, digits, an .npz path, or folder:PATH", Text(), flag=False, identity=True
    )
    data_dir: str | None = setting(
        None,
        "data",
        "where the data set's files are (a folder, or an .npz for mnist)",
        Text(),
        commands=(RUN, WORKER, EXPORT),
    )
    subset: int = setting(0, "data", "train on a stratified sample of N images (0 = all)", Whole(0), identity=True)
    # what to search
    space: str = setting(
        "cnn",
        "space",
        "the search space: a name from search_spaces/ (such as cnn) or a .py file of your own (docs/own-space.md)",
        SpaceName(),
        identity=True,
    )
    baselines: bool | list[str] = setting(
        True, "space", "'all' (default for a new study), 'none', or names separated by commas", Baselines()
    )
    # how to judge a trial
    folds: int = setting(5, "validation", "K of the K-fold cross-validation", Whole(2), identity=True)
    repeats: int = setting(1, "validation", "how many times to repeat the K folds, reshuffled", Whole(1), identity=True)
    epochs: int = setting(10, "validation", "most epochs per fold (the space tunes up to this)", Whole(1), identity=True)
    early_stopping: int = setting(
        0, "validation", "stop a fold after N epochs without val-loss improvement (0 = off)", Whole(0)
    )
    seed: int = setting(42, "validation", "seed of the folds and the sampler", Whole(0), identity=True)
    precision: str = setting(
        "auto",
        "validation",
        "float32, mixed_bfloat16 (bfloat16 math, float32 weights), or auto: mixed_bfloat16 on a recent GPU",
        Choice(PRECISIONS),
        commands=(RUN, WORKER, EXPORT),
    )
    objectives: list[str] = setting(
        None,
        "search",
        "accuracy (default), accuracy,time, accuracy,params or accuracy,latency (batch-1 inference ms)",
        Objectives(),
        factory=lambda: ["accuracy"],
        identity=True,
    )
    max_gap: float | None = setting(
        None, "search", "a trial whose mean val loss - train loss exceeds X is infeasible", Number(), identity=True
    )
    # how long to search
    sampler: str = setting("tpe", "search", "the sampler", Choice(SAMPLERS))
    pruner: str = setting("hyperband", "search", "the pruner", Choice(PRUNERS))
    trials: int = setting(20, "search", "how many more trials to run in this call", Whole(1))
    timeout: float | None = setting(None, "search", "stop starting trials after this many seconds", Number(positive=True))
    outage_limit: float = setting(
        OUTAGE_LIMIT,
        "search",
        "wait this long for a database that went away (then exit 2; the trial is re-queued), e.g. 90s or 10m",
        Duration(),
    )
    budget: float | None = setting(
        None,
        "search",
        "plan the whole run (search, final training, export) to end within this wall-clock time, e.g. 15m or 1h",
        Duration(),
    )
    # the final models (tuner export, --export-top)
    export_top: int = setting(
        0, "export", "when the study ends, export its K best trials (see 'tuner export')", Whole(0), commands=(RUN,)
    )
    final_subset: int | None = setting(
        None,
        "export",
        "train the exported models on N training images (0 = all; default: the study's subset)",
        Whole(0, optional=True),
        commands=(RUN, EXPORT),
    )
    final_epochs: int = setting(
        0,
        "export",
        "epochs of the exported models' training (0 = the folds' mean best epoch)",
        Whole(0),
        commands=(RUN, EXPORT),
    )
    final_budget: float | None = setting(
        None,
        "export",
        "at most this many seconds per exported model's training",
        Number(positive=True, unit=" of seconds"),
        commands=(RUN, EXPORT),
    )
    test_time_flips: str = setting(
        "off",
        "export",
        "average each exported model's class probabilities over the image and its mirrors: auto = the flips the "
        "model trained with (docs/export.md)",
        Choice(TEST_TIME_FLIPS),
        commands=(RUN, EXPORT),
    )
    export_formats: list[str] = setting(
        None,
        "export",
        "formats of the exported models, e.g. keras,saved_model,onnx,litert; each is checked against the Keras "
        "model on the test split (docs/export-formats.md)",
        ExportFormats(),
        factory=lambda: ["keras"],
        commands=(RUN, EXPORT),
        aliases=("--format",),
    )
    # your own images (docs/own-images.md)
    image_size: int | list[int] = setting(
        0, "data", "side in pixels; 0 = auto; a list: the space tunes among them", ImageSize(), flag=False, identity=True
    )
    color_mode: str = setting("auto", "data", "auto, grayscale or rgb", Choice(COLOR_MODES), flag=False, identity=True)
    follow_links: bool = setting(
        False,
        "data",
        "read image files and class folders that are links out of the image folder (refused by default)",
        Switch(),
        commands=(RUN, WORKER, EXPORT),
    )
    streaming: bool | str = setting(
        "auto", "data", "read images from disk per batch: true, false or auto", AutoSwitch(), flag=False
    )
    augmentation: str | list[str] = setting(
        "auto", "space", "auto (what suits the data), off, or kinds to tune", AugmentationKinds(), flag=False
    )
    class_weights: bool | str = setting(
        "auto", "space", "tune class weights: true, false or auto (unbalanced classes)", AutoSwitch(), flag=False
    )
    pretrained: str | None = setting(
        None,
        "space",
        "a folder written by `tuner pretrain`: trials start their conv layers from it",
        Text(),
        flag=False,
        identity=True,
    )
    deterministic: bool = setting(
        False,
        "validation",
        "reproducible training: seeded Python, NumPy and backend, deterministic ops (slower; docs/reproducibility.md)",
        Switch(),
        commands=(RUN, WORKER, EXPORT),
    )
    mlflow_tracking_uri: str | None = setting(
        None,
        "search",
        "log every finished trial to MLflow at this tracking URI ('local': ./mlflow.db; default: $MLFLOW_TRACKING_URI)",
        TrackingUri(),
    )

    def identity(self) -> dict[str, Any]:
        """The settings that give the study's values their meaning (stored with the study)."""
        return {name: spec.kind.identify(getattr(self, name)) for name, spec in settings() if spec.identity}

    def validate(self) -> StudyConfig:
        """Check and normalise every value; one TunerError naming the first bad one and its fix."""
        for name, spec in settings():
            setattr(self, name, spec.kind.check(name, getattr(self, name), spec.flag))
        if self.sampler == "cmaes" and (len(self.objectives) > 1 or self.max_gap is not None):
            raise TunerError(
                "the cmaes sampler cannot optimise two objectives or honour --max-gap; use --sampler tpe, gp or nsga2"
            )
        return self

    def is_folder(self) -> bool:
        """Whether the data set is an image folder (`folder:PATH`, or `folder` with --data-dir)."""
        return self.dataset.startswith("folder:") or self.dataset == "folder"

    def folder_options(self) -> dict[str, Any]:
        """Keyword arguments for loading an image folder (none for the built-in data sets)."""
        if not self.is_folder():
            return {}
        sizes = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        return {
            "image_size": max(sizes),
            "color_mode": self.color_mode,
            "streaming": self.streaming,
            "follow_links": self.follow_links,
        }


def settings() -> Iterator[tuple[str, Setting]]:
    """(name, Setting) of every field of StudyConfig, in declaration order."""
    for item in dataclasses.fields(StudyConfig):
        yield item.name, item.metadata["setting"]


def flag_settings(command: str) -> Iterator[tuple[str, Setting]]:
    """The settings that `command` takes as command-line flags."""
    return ((name, spec) for name, spec in settings() if spec.flag and command in spec.commands)


def as_flags(values: dict[str, Any], command: str) -> list[str]:
    """`--name value` for each given value that `command` takes as a flag (workers get the user's flags)."""
    flags: list[str] = []
    for name, spec in flag_settings(command):
        if values.get(name) is not None:
            flags += spec.kind.as_flag(f"--{name.replace('_', '-')}", values[name])
    return flags
