"""tuner: an Optuna-driven AutoML tuner for Keras CNN image classifiers.

The public API, re-exported here; each name lives in a module of its own.
"""

from tuner.config import StudyConfig, load_study_config
from tuner.data import DataSet, load_dataset
from tuner.errors import TunerError
from tuner.harness import CVResult, cross_validate
from tuner.models import build_model
from tuner.runner import open_study, run_study
from tuner.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec

__version__ = "0.1.0"
__all__ = [
    "ConvBlock", "CVResult", "DataSet", "ModelSpec", "StudyConfig", "TrainSpec", "TrialSpec", "TunerError",
    "build_model", "cross_validate", "load_dataset", "load_study_config", "open_study", "run_study",
]
