"""Experiment tracking: each finished trial logged to MLflow as one run, when a tracking URI is given.

The URI is `--mlflow-tracking-uri` (or `mlflow_tracking_uri` in the study
file; `local` is ./mlflow.db), else the environment variable
MLFLOW_TRACKING_URI; with neither, nothing is logged and MLflow is never
imported. The study's name is the MLflow experiment; each run is named by
the trial's number and holds its parameters, its objective values under the
study's metric names, and its state and user attributes as tags (Optuna
integration's `MLflowCallback`, called by the trial loop after each trial is
told). The store is checked before any training, so a missing package or
an unreachable store ends the run in one line.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.search.study import METRIC_NAMES
from tuner.storage.urls import mask_url

ENV = "MLFLOW_TRACKING_URI"
EXTRA = "pip install 'tuner[mlflow]' (or: pip install mlflow optuna-integration)"

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def tracking_uri(config: StudyConfig) -> str | None:
    """Where trials are logged: the setting, else $MLFLOW_TRACKING_URI, else None (no tracking)."""
    return config.mlflow_tracking_uri or os.environ.get(ENV) or None


def trial_callbacks(config: StudyConfig) -> list[TrialCallback]:
    """The callbacks the trial loop calls with each finished trial: MLflow's when tracking is asked for, else none."""
    uri = tracking_uri(config)
    if uri is None:
        return []
    try:
        import mlflow
        from optuna_integration.mlflow import MLflowCallback
    except ImportError as error:
        raise TunerError(f"MLflow tracking needs the mlflow extra ({error.name} is missing): {EXTRA}") from None
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # (its database set-up lines)
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TunerError(
            f"cannot use the MLflow tracking URI {mask_url(uri)}: {first}; fix --mlflow-tracking-uri or ${ENV} "
            "('local' logs to ./mlflow.db)"
        ) from None
    with warnings.catch_warnings():  # deprecated in optuna-integration 4.9 (removal planned for 6.0), still complete
        warnings.simplefilter("ignore", FutureWarning)
        callback = MLflowCallback(tracking_uri=uri, metric_name=[METRIC_NAMES[o] for o in config.objectives])
    return [callback]
