"""`tuner export`: a study's best trials as final models, and optionally their averaged ensemble.

The test split is read once for the whole export; each model is tested on it
once (tuner.results.export), and an ensemble's figures come from its
members' test probabilities (tuner.results.ensemble). `export.json` lists
what was written, with the artifact ids on each trial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tuner.core.errors import TunerError
from tuner.core.files import remove_partials, write_text
from tuner.core.settings import StudyConfig
from tuner.data import DataSet, load_study_data
from tuner.results import plots
from tuner.results.ensemble import ExportedEnsemble, export_ensemble
from tuner.results.export import ExportedModel, export_trial, study_config
from tuner.results.ranking import best_trials
from tuner.storage.artifacts import attach_to_study
from tuner.training import determinism


@dataclass
class StudyExport:
    """What an export wrote."""

    models: list[ExportedModel]
    ensemble: ExportedEnsemble | None = None
    skipped_plots: dict[str, str] = field(default_factory=dict)  # plot file -> why it was not drawn
    test_split_reads: int = 0  # reads of the test split by the export's data set, earlier ones included


def same_shape_members(models: list[ExportedModel], shape: tuple[int, ...], count: int) -> list[ExportedModel]:
    """The first `count` models that take images of `shape` (the test split's), so one input feeds them all."""
    return [m for m in models if tuple(m.input_shape) == tuple(shape)][:count]


def write_manifest(
    out: Path,
    study: optuna.Study,
    models: list[ExportedModel],
    ensemble: ExportedEnsemble | None,
    study_files: dict[str, str],
) -> None:
    """export.json: the models, their test accuracy and artifact ids, the ensemble, the study's plots."""
    manifest: dict[str, Any] = {
        "study": study.study_name,
        "models": [
            {
                "trial": e.trial_number,
                "model": e.model_path.name,
                "formats": {name: path.name for name, path in e.formats.items()},
                "test_accuracy": e.test_accuracy,
                "final_epochs": e.final_epochs,
                "epochs_rule": e.epochs_rule,
                "artifacts": e.artifact_ids,
            }
            for e in models
        ],
        "ensemble": None
        if ensemble is None
        else {"model": ensemble.model_path.name, "members": ensemble.members, "test_accuracy": ensemble.test_accuracy},
        "study_artifacts": study_files,
    }
    write_text(out / "export.json", json.dumps(manifest, indent=2) + "\n")


def study_plots(study: optuna.Study, out: Path, store: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The optimization history and importances, uploaded as study artifacts; (their ids, why any was skipped)."""
    uploaded, skipped = {}, {}
    for name, draw in (
        ("study-history.png", plots.optimization_history),
        ("study-importances.png", plots.param_importances),
    ):
        drawn = draw(out / name, study)
        if isinstance(drawn, plots.Skipped):
            skipped[name] = drawn.reason
            continue
        uploaded[name] = attach_to_study(study, drawn, store)
    return uploaded, skipped


def export_study(
    study: optuna.Study,
    config: StudyConfig,
    store: Any,
    top: int,
    out: str | Path,
    ensemble: int = 0,
    dataset: DataSet | None = None,
) -> StudyExport:
    """Export the `top` best feasible trials of `study` into `out` (and the ensemble of the first `ensemble`).

    `dataset`: the data to retrain and test on, when it was given rather than named by the config.
    """
    if top < 1:
        raise TunerError(f"--top must be a whole number >= 1, got {top}")
    if ensemble == 1 or ensemble < 0:
        raise TunerError(f"--ensemble must be 0 (none) or at least 2 models, got {ensemble}")
    config = study_config(config, study)
    if config.deterministic:
        determinism.enable(config.seed)
    trials = best_trials(study, max(top, ensemble))
    if not trials:
        raise TunerError(
            f"study {study.study_name!r} has no complete trial that meets its constraints; run more trials first"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_partials(out)  # what an export killed midway left; its complete files are rewritten below
    if dataset is None:
        dataset = load_study_data(config, config.final_subset)  # the final model may see more than the search
    test = dataset.test_split()
    models = [export_trial(study, trial, config, dataset, test, out, store) for trial in trials]
    averaged = None
    members = same_shape_members(models, test[0].shape[1:], ensemble) if ensemble else []
    if len(members) >= 2:
        averaged = export_ensemble(study.study_name, members, test, dataset.class_names, out)
    study_files, skipped = study_plots(study, out, store)
    write_manifest(out, study, models, averaged, study_files)
    return StudyExport(models, averaged, skipped, dataset.test_split_reads)
