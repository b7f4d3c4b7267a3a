"""tuner: an Optuna-driven AutoML tuner for Keras CNN image classifiers.

The public API is re-exported here and imported on first use, so that
`import tuner` (and `tuner --help`) stays light: Keras, Optuna and the
dashboard load only when something needs them. Each name lives in the
folder of its step: core, data, training, search, run, api.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "TunerError": "tuner.core.errors",
    "StudyConfig": "tuner.core.settings",
    "load_study_config": "tuner.core.study_file",
    "ConvBlock": "tuner.core.spec",
    "ModelSpec": "tuner.core.spec",
    "TrainSpec": "tuner.core.spec",
    "TrialSpec": "tuner.core.spec",
    "DataSet": "tuner.data",
    "load_dataset": "tuner.data",
    "build_model": "tuner.training.models",
    "CVResult": "tuner.training.harness",
    "cross_validate": "tuner.training.harness",
    "open_study": "tuner.search.study",
    "run_study": "tuner.run.pipeline",
    "tune": "tuner.api.tune",
    "TuneResult": "tuner.api.tune",
    "CNNClassifier": "tuner.api.estimator",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
