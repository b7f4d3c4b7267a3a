"""PNG plots for model cards and studies (matplotlib, Agg: no display needed).

Per model: learning curves (accuracy and loss, train vs validation, as seed
001 draws them) and the test confusion matrix with class names. Per study:
Optuna's optimization history and parameter importances. Each function
writes one file and returns its path; a study plot the study cannot support
yet (importances need a few complete trials sharing parameters) is not drawn,
and the function returns why instead (a `Skipped`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from tuner.core.files import replacing


@dataclass(frozen=True)
class Skipped:
    """A study plot not drawn, and why (for the export's report)."""

    reason: str


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    try:
        with replacing(path) as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        plt.close(figure)
    return path


def learning_curves(path: Path, final: dict[str, list[float]], cv: dict[str, list[float]] | None, title: str) -> Path:
    """Accuracy and loss per epoch: the folds' mean train and validation curves, and the final retrain.

    A budget study's rung validates once, after its last epoch: its validation is then a single point.
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        if cv and cv.get(metric):
            epochs = np.arange(1, len(cv[metric]) + 1)
            validation = cv.get(f"val_{metric}", [])
            axis.plot(epochs, cv[metric], "o-", label="train (CV mean)")
            axis.plot(epochs[len(epochs) - len(validation) :], validation, "s-", label="validation (CV mean)")
        if final.get(metric):
            axis.plot(np.arange(1, len(final[metric]) + 1), final[metric], "^--", label="train (final, all data)")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_ylabel(metric)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return _save(figure, path)


def confusion_matrix(path: Path, matrix: np.ndarray, class_names: tuple[str, ...], title: str) -> Path:
    """Rows are the true label, columns the prediction, each cell a count of test images."""
    size = max(5, 0.6 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true label")
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            colour = "white" if matrix[row, column] > threshold else "black"
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", color=colour, fontsize=8)
    axis.set_title(title)
    return _save(figure, path)


def _first_value(trial: Any) -> float:
    return trial.values[0]


def _target_name(study: Any) -> str:
    return (study.metric_names or ["objective"])[0]


def optimization_history(path: Path, study: Any) -> Path | Skipped:
    """Objective (the first one for a multi-objective study) against trial number."""
    from optuna.visualization.matplotlib import plot_optimization_history

    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return Skipped("no complete trial yet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        axis = plot_optimization_history(study, target=_first_value, target_name=_target_name(study))
    return _save(axis.figure, path)


def param_importances(path: Path, study: Any) -> Path | Skipped:
    """fANOVA importances of the parameters all complete trials share; Skipped when too few trials."""
    from optuna.visualization.matplotlib import plot_param_importances

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return Skipped(f"needs at least 2 complete trials, the study has {len(complete)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axis = plot_param_importances(study, target=_first_value, target_name=_target_name(study))
    except (RuntimeError, ValueError) as error:  # no shared parameters, or no variation in them
        plt.close("all")
        return Skipped(str(error).splitlines()[0] if str(error) else type(error).__name__)
    if not axis.patches:  # nothing to rank
        plt.close("all")
        return Skipped("no parameter varied across the complete trials")
    return _save(axis.figure, path)
