"""`tuner.tune(data, budget="15m")`: what `python -m tuner` runs, called from Python, the model handed back.

`data` is arrays (`(x, y)` or `(x_train, y_train, x_test, y_test)`), an
image folder's path, a built-in data set or study file by name; `model`
is a define-by-run model function of the user's own, instead of a space; keyword
arguments are the study settings, the same single definition the command
line and study files use (tuner.core.settings), and a study in `storage`
under `study_name` is resumed, or shared with `tuner worker`s (named data
only: workers load it themselves). The run is the pipeline's (tuner.run),
so a budget is planned, a trial count is pruned, and the best model is
trained, tested once and exported with its card. Progress shows in a
notebook (tqdm.auto) and a terminal; Ctrl-C keeps what finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.model_function import ModelFunctionSpace
from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig, safe_study_name
from tuner.core.space import SearchSpace
from tuner.core.study_file import FOLDER_PREFIX, load_study_config, study_files
from tuner.data.arrays import PixelScale, from_arrays
from tuner.data.dataset import DataSet
from tuner.run.pipeline import RunResult, run_study


@dataclass
class TuneResult:
    """A finished (or interrupted) run: the study, the exported models, and the best one ready to predict."""

    run: RunResult
    scale: PixelScale = field(default_factory=lambda: PixelScale(1.0))  # how raw pixels become the models' input
    _model: Any = field(default=None, repr=False)

    @property
    def study(self) -> Any:
        """The Optuna study (all trials, their attributes, the dashboard's notes)."""
        return self.run.study

    @property
    def interrupted(self) -> bool:
        return self.run.interrupted

    @property
    def model_paths(self) -> list[Path]:
        """The exported .keras files, best first."""
        finals = self.run.finals
        return [] if finals is None else [m.model_path for m in finals.models]

    @property
    def model(self) -> Any:
        """The best exported model as a keras.Model (loaded once, in Keras' safe mode)."""
        if self._model is None:
            if not self.model_paths:
                raise TunerError("the run exported no model (interrupted, or export_top=0); run it again to finish")
            import keras

            self._model = keras.saving.load_model(self.model_paths[0], safe_mode=True)
        return self._model

    @property
    def card(self) -> dict[str, Any]:
        """The best model's card: its spec, training, test figures and evidence."""
        if not self.model_paths:
            raise TunerError("the run exported no model, so there is no card")
        card: dict[str, Any] = json.loads(self.model_paths[0].with_suffix(".card.json").read_text())
        return card

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities for raw images (scaled as the training images were)."""
        return np.asarray(self.model.predict(self.scale.apply(x), batch_size=256, verbose=0), dtype="float64")

    def predict(self, x: Any) -> np.ndarray:
        """The most probable class index of each image."""
        return self.predict_proba(x).argmax(axis=1)

    def evaluate(self, x: Any, y: Any) -> dict[str, float]:
        """Accuracy and cross-entropy on images `x` with labels `y` (class indices)."""
        from tuner.results.export import evaluation_of

        result = evaluation_of(self.predict_proba(x), np.asarray(y).astype("int64"))
        return {"accuracy": result.accuracy, "loss": result.loss}

    def summary(self) -> str:
        """The study's summary, as `tuner report` prints it."""
        from tuner.results.summary import render
        from tuner.run.strategies import summary_section

        return render(self.study, summary_section(self.study))


def _config(data: Any, settings: dict[str, Any], study_name: str | None) -> tuple[StudyConfig, DataSet | None, PixelScale]:
    """The study's settings, and the data set when `data` is arrays (else the config names the data)."""
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 4):
            raise TunerError("data must be (x, y) or (x_train, y_train, x_test, y_test), a folder's path or a name")
        x, y, x_test, y_test = (*data, None, None) if len(data) == 2 else tuple(data)
        dataset, scale = from_arrays(x, y, x_test, y_test, class_names=settings.pop("class_names", None))
        values = {"name": safe_study_name(study_name or "arrays"), "dataset": "arrays", **settings}
        return StudyConfig(**values).validate(), dataset, scale
    if not isinstance(data, (str, Path)):
        raise TunerError(f"data must be arrays, a folder's path or a name, got {type(data).__name__}")
    text = str(data)
    if text in study_files() or text.endswith(".toml") or text.startswith(FOLDER_PREFIX):
        return load_study_config(text, settings), None, PixelScale(1.0)
    if Path(text).expanduser().is_dir():
        return load_study_config(FOLDER_PREFIX + str(Path(text).expanduser()), settings), None, PixelScale(1.0)
    raise TunerError(
        f"data {text!r} is neither a folder nor a study; give arrays, an image folder's path, or one of "
        f"{', '.join(sorted(study_files()))}"
    )


def tune(
    data: Any,
    *,
    budget: float | str | None = None,
    trials: int | None = None,
    space: str | SearchSpace | None = None,
    model: Callable[..., Any] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    verbose: bool = False,
    **settings: Any,
) -> TuneResult:
    """Tune a CNN for `data` within `budget` (e.g. "15m") or for `trials` trials; see the module's docstring.

    `space`: a space's name, a .py file, or a SearchSpace object of your own.
    `model`: instead of a space, a function of an Optuna trial that returns a
    Keras model (define-by-run; search_spaces.model_function says how it trains).
    `settings`: any study setting (folds=3, epochs=5, seed=1, export_top=2,
    objectives=["accuracy", "time"], ...); `class_names` names the classes
    of arrays. Returns a TuneResult whose `model` is the best exported model.
    """
    started = time.time()
    given = {key: value for key, value in settings.items() if value is not None}
    if budget is not None:
        given["budget"] = budget
    if trials is not None:
        given["trials"] = trials
    if model is not None:
        if space is not None:
            raise TunerError("give space or model, not both: a model function is a space of its own")
        space = ModelFunctionSpace(model)
    space_object = space if space is not None and not isinstance(space, str) else None
    if isinstance(space, str):
        given["space"] = space
    elif space_object is not None:
        if not isinstance(space_object, SearchSpace):
            raise TunerError("space must be a space's name, a .py file, or an object implementing SearchSpace")
        given["space"] = space_object.name
    given.setdefault("export_top", 1)  # from Python, a tuned model is what comes back
    config, dataset, scale = _config(data, given, study_name)
    ran = run_study(
        config,
        started=started,
        storage_url=storage,
        study_name=study_name,
        verbose=2 if verbose else 0,
        progress=progress,
        dataset=dataset,
        space=space_object,
        out=Path(out) if out is not None else None,
    )
    return TuneResult(ran, scale)
