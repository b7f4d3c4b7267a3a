"""Best trials -> final models: retrain on the whole training split, test once, save.

For each selected trial the model is rebuilt from its parameters alone (the
space's `suggest` through `spec_for_params`), trained with the trial's seed on
the study's full training split (or `final_subset` of it) for the rounded mean
of the folds' best epochs (the CV told us how long this recipe should train),
or the study's `final_epochs`, cut to fit `final_budget` seconds at the speed
the trial measured (for a study with a wall-clock goal), and evaluated once on the
sealed test split. The `.keras` file, a model card and plots go to `--out`;
the card and plots are also attached to the trial as Optuna artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna

import search_spaces
from tuner import card, models, plots, pretrained
from tuner.artifacts import attach_to_trial
from tuner.class_weights import class_weights
from tuner.config import StudyConfig
from tuner.data import DataSet, load_dataset
from tuner.errors import TunerError
from tuner.image_folder import dataset_for_shape
from tuner.notes import write_trial_note
from tuner.objective import spec_for_params
from tuner.selection import best_baseline, select_trials
from tuner.spec import TrialSpec
from tuner.traits import data_traits

EVAL_BATCH = 256  # fixed, so that a reloaded model reproduces the card's figures exactly
LOSS_EPSILON = 1e-7  # Keras' clipping of probabilities in cross-entropy


@dataclass
class Evaluation:
    """One pass over the test split."""

    accuracy: float
    loss: float
    predictions: np.ndarray = field(repr=False)


@dataclass
class ExportedModel:
    trial_number: int
    model_path: Path
    files: list[Path]
    artifact_ids: dict[str, str]
    test_accuracy: float
    final_epochs: int
    epochs_rule: str  # why that many epochs (tuner.export.plan_final_training)


def evaluate(model, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Accuracy and cross-entropy from one `predict` at a fixed batch size (deterministic)."""
    probabilities = np.asarray(model.predict(x, batch_size=EVAL_BATCH, verbose=0), dtype="float64")
    predictions = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(y)), y], LOSS_EPSILON, 1.0)
    return Evaluation(float(np.mean(predictions == y)), float(-np.mean(np.log(picked))), predictions)


@dataclass
class FinalPlan:
    """How long the final model trains, and why (the card says it)."""

    epochs: int
    rule: str


def plan_final_training(
    trial: optuna.trial.FrozenTrial, spec: TrialSpec, fixed: int = 0, budget: float | None = None, images: int = 0
) -> FinalPlan:
    """The final training's epochs: `fixed`, else the folds' rounded mean best epoch, else the trial's own;
    then, with a `budget` in seconds, no more epochs of `images` than the trial's measured speed fits in it."""
    if fixed:
        plan = FinalPlan(fixed, "the study's final_epochs")
    elif trial.user_attrs.get("best_epochs"):
        plan = FinalPlan(max(1, int(math.floor(float(np.mean(trial.user_attrs["best_epochs"])) + 0.5))),
                         "rounded mean best epoch over the folds")
    else:
        plan = FinalPlan(spec.train.epochs, "the trial's epochs")
    if budget is None:
        return plan
    per_image = trial.user_attrs.get("seconds_per_image")
    if not per_image or not images:
        return FinalPlan(plan.epochs, plan.rule + f"; final_budget {budget:g}s not applied: the trial has no speed record")
    fits = max(1, int(budget // (per_image * images)))
    if fits >= plan.epochs:
        return FinalPlan(plan.epochs, plan.rule + f"; fits final_budget {budget:g}s")
    return FinalPlan(fits, f"{plan.rule} was {plan.epochs}, cut to fit final_budget {budget:g}s "
                           f"at the trial's {per_image * 1000:.2f} ms per image")


def study_config(config: StudyConfig, study: optuna.Study) -> StudyConfig:
    """The config with the settings the study was actually run with (they define its data)."""
    stored = study.user_attrs.get("config") or {}
    return dataclasses.replace(config, **{k: v for k, v in stored.items() if k in StudyConfig.COMPARABLE})


def _callbacks(spec: TrialSpec) -> list:
    """The schedule's callbacks; with no validation split, a plateau watches the training loss."""
    import keras

    train = spec.train
    if train.lr_schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=train.plateau_factor, patience=train.plateau_patience)]
    return models.schedule_callbacks(train)


def retrain(spec: TrialSpec, dataset: DataSet, seed: int):
    """Train `spec` on the whole training split; returns (model, per-epoch history, seconds)."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = models.build_model(spec.model)
    if spec.model.pretrained:  # as in the harness: before compiling, so that frozen layers stay frozen
        pretrained.start_from(model, spec.model.pretrained, spec.model.freeze_pretrained)
    models.compile_model(model, spec.train, len(dataset.y_train))
    started = time.perf_counter()
    history = model.fit(
        dataset.x_train, dataset.y_train, batch_size=spec.train.batch_size, epochs=spec.train.epochs,
        callbacks=_callbacks(spec), shuffle=True, verbose=0,
        class_weight=class_weights(dataset.y_train, spec.train.class_weight, spec.model.num_classes),
    ).history
    seconds = time.perf_counter() - started
    return model, {k: [float(v) for v in values] for k, values in history.items() if k != "learning_rate"}, seconds


def export_trial(study, trial, config: StudyConfig, dataset: DataSet, test, out: Path, store) -> ExportedModel:
    """Retrain, test once, save the model, write and attach its card and plots."""
    space = search_spaces.get_space(config.space)
    spec = spec_for_params(space, trial.params, dataset, config.epochs, data_traits(config, dataset))
    dataset = dataset_for_shape(dataset, spec.model.input_shape)  # an image folder at the trial's size
    if tuple(dataset.input_shape) != tuple(test[0].shape[1:]):
        test = dataset.test_split()
    plan = plan_final_training(trial, spec, config.final_epochs, config.final_budget, len(dataset.y_train))
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=plan.epochs))
    seed = int(trial.user_attrs.get("seed", config.seed + trial.number))
    model, history, seconds = retrain(spec, dataset, seed)
    x_test, y_test = test
    evaluation = evaluate(model, x_test, y_test)

    stem = out / f"trial-{trial.number}"
    model_path = stem.with_suffix(".keras")
    model.save(model_path)
    curves = plots.learning_curves(
        Path(f"{stem}.curves.png"), history, trial.user_attrs.get("cv_history"), f"{study.study_name}, trial {trial.number}"
    )
    figures = card.held_out_figures(evaluation, y_test, dataset.class_names)
    confusion = plots.confusion_matrix(
        Path(f"{stem}.confusion.png"), np.array(figures["confusion_matrix"]), dataset.class_names,
        f"{study.study_name}, trial {trial.number}: test accuracy {evaluation.accuracy:.4f}",
    )
    artifact_ids = {path.name: attach_to_trial(study, trial.number, path, store) for path in (curves, confusion)}
    model_card = card.build_card(
        study=study, trial=trial, config=config, spec=spec, model=model, dataset=dataset, test=test,
        evaluation=evaluation, figures=figures, train_seconds=seconds, epochs_rule=plan.rule, seed=seed, history=history,
        baseline=best_baseline(study), model_file=model_path.name, artifact_ids=artifact_ids,
    )
    card_json, card_md = Path(f"{stem}.card.json"), Path(f"{stem}.card.md")
    card_json.write_text(json.dumps(model_card, indent=2) + "\n")
    card_md.write_text(card.to_markdown(model_card))
    for path in (card_json, card_md):
        artifact_ids[path.name] = attach_to_trial(study, trial.number, path, store)
    write_trial_note(study, trial.number, card_md.read_text())  # the dashboard shows it on the trial's page
    import keras

    keras.backend.clear_session()
    return ExportedModel(trial.number, model_path, [model_path, curves, confusion, card_json, card_md], artifact_ids,
                         evaluation.accuracy, plan.epochs, plan.rule)


def export_study(study: optuna.Study, config: StudyConfig, store, top: int, out) -> list[ExportedModel]:
    """Export the `top` best feasible trials of `study` into `out`; reads the test split once."""
    if top < 1:
        raise TunerError(f"--top must be a whole number >= 1, got {top}")
    config = study_config(config, study)
    trials = select_trials(study, top)
    if not trials:
        raise TunerError(f"study {study.study_name!r} has no complete trial that meets its constraints; run more trials first")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    subset = config.subset if config.final_subset is None else config.final_subset  # the final model may see more
    dataset = load_dataset(config.dataset, config.data_dir, subset, config.seed, **config.folder_options())
    test = dataset.test_split()
    exported = [export_trial(study, trial, config, dataset, test, out, store) for trial in trials]
    study_files = {}
    for name, draw in (("study-history.png", plots.optimization_history), ("study-importances.png", plots.param_importances)):
        path = draw(out / name, study)
        if path is not None:
            study_files[name] = optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
    manifest = {
        "study": study.study_name,
        "models": [
            {"trial": e.trial_number, "model": e.model_path.name, "test_accuracy": e.test_accuracy, "artifacts": e.artifact_ids}
            for e in exported
        ],
        "study_artifacts": study_files,
    }
    (out / "export.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return exported
