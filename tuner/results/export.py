"""One trial -> its final model: retrain on the whole training split, test once, save with its card and plots.

For each exported trial (tuner.results.export_study chooses them) the model is rebuilt from the spec stored on the
trial (trials stored before specs were are rebuilt from their parameters
through the space), trained with the trial's seed on the study's full
training split (or `final_subset` of it) for the rounded mean of the folds'
best epochs, or the study's `final_epochs`, cut to fit `final_budget`
seconds at the speed the trial measured, and evaluated once on the sealed
test split. The model in each of the study's `export_formats`, each checked
against the Keras model on that split (tuner.results.formats), a model card
and plots go to `--out`, each written crash-safely (a killed writer's hidden
partial files are removed by the next export into the folder); the card and
plots are also attached to the trial as Optuna artifacts, once per file name
however often it is exported, and the card becomes the trial's note in the
dashboard.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

import search_spaces
from tuner.core.files import remove_partials, sha256_of, write_text
from tuner.core.record import TrialRecord
from tuner.core.settings import StudyConfig
from tuner.core.spec import TrialSpec
from tuner.dashboard.notes import artifact_link, write_trial_note
from tuner.data import DataSet
from tuner.results import card, formats, plots
from tuner.results.mirrors import exported_flips, mirror_averaged
from tuner.results.ranking import best_baseline
from tuner.search.objective import spec_for_params
from tuner.search.study import IDENTITY_ATTR
from tuner.search.trait_detection import data_traits
from tuner.storage.artifacts import attach_to_trial
from tuner.training.precision import resolve_precision
from tuner.training.schedule import fitted_cosine
from tuner.training.train_once import Trained, train_once

EVAL_BATCH = 256  # fixed, so that a reloaded model reproduces the card's figures exactly
LOSS_EPSILON = 1e-7  # Keras' clipping of probabilities in cross-entropy


@dataclass
class Evaluation:
    """One pass over the test split."""

    accuracy: float
    loss: float
    predictions: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)


@dataclass
class ExportedModel:
    """One exported trial: where its files are and what the test said."""

    trial_number: int
    model_path: Path
    files: list[Path]
    artifact_ids: dict[str, str]
    test_accuracy: float
    final_epochs: int
    epochs_rule: str  # why that many epochs (plan_final_training, or a budget's plan)
    evaluation: Evaluation = field(repr=False)
    input_shape: tuple[int, int, int] = (0, 0, 0)
    formats: dict[str, Path] = field(default_factory=dict)  # each written format's file (or folder)


def evaluate(model: Any, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """Accuracy and cross-entropy from one `predict` at a fixed batch size (deterministic)."""
    probabilities = np.asarray(model.predict(x, batch_size=EVAL_BATCH, verbose=0), dtype="float64")
    return evaluation_of(probabilities, y)


def evaluation_of(probabilities: np.ndarray, y: np.ndarray) -> Evaluation:
    """Accuracy and cross-entropy of class probabilities against labels."""
    predictions = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(y)), y], LOSS_EPSILON, 1.0)
    return Evaluation(float(np.mean(predictions == y)), float(-np.mean(np.log(picked))), predictions, probabilities)


@dataclass
class FinalPlan:
    """How long the final model trains, and why (the card says it).

    With a `deadline` (a budget run's), the learning rate follows a cosine
    to zero fitted to end by then (tuner.training.schedule): planned for
    `epochs`, re-fitted to the measured speed, never more than `max_epochs`.
    """

    epochs: int
    rule: str
    deadline: float | None = None
    max_epochs: int | None = None


def plan_final_training(
    trial: optuna.trial.FrozenTrial, spec: TrialSpec, fixed: int = 0, budget: float | None = None, images: int = 0
) -> FinalPlan:
    """The final training's epochs: `fixed`, else the folds' rounded mean best epoch, else the trial's own;
    then, with a `budget` in seconds, no more epochs of `images` than the trial's measured speed fits in it."""
    cv = TrialRecord.of(trial).cv
    if fixed:
        plan = FinalPlan(fixed, "the study's final_epochs")
    elif cv is not None and cv.best_epochs:
        plan = FinalPlan(max(1, math.floor(float(np.mean(cv.best_epochs)) + 0.5)), "rounded mean best epoch over the folds")
    else:
        plan = FinalPlan(spec.train.epochs, "the trial's epochs")
    if budget is None:
        return plan
    per_image = cv.seconds_per_image if cv is not None else 0.0
    if not per_image or not images:
        return FinalPlan(plan.epochs, plan.rule + f"; final_budget {budget:g}s not applied: the trial has no speed record")
    fits = max(1, int(budget // (per_image * images)))
    if fits >= plan.epochs:
        return FinalPlan(plan.epochs, plan.rule + f"; fits final_budget {budget:g}s")
    return FinalPlan(
        fits,
        f"{plan.rule} was {plan.epochs}, cut to fit final_budget {budget:g}s "
        f"at the trial's {per_image * 1000:.2f} ms per image",
    )


def study_config(config: StudyConfig, study: optuna.Study) -> StudyConfig:
    """The config with the settings the study was actually run with (they define its data)."""
    stored = study.user_attrs.get(IDENTITY_ATTR) or {}
    known = set(config.identity())
    return dataclasses.replace(config, **{k: v for k, v in stored.items() if k in known})


def trial_spec(trial: optuna.trial.FrozenTrial, config: StudyConfig, dataset: DataSet) -> TrialSpec:
    """The spec stored on the trial; for a trial stored before specs were, rebuilt from its parameters."""
    stored = TrialRecord.of(trial).spec
    if stored is not None:
        return stored
    space = search_spaces.get_space(config.space)
    return spec_for_params(space, trial.params, dataset, config.epochs, data_traits(config, dataset))


def _final_training(
    spec: TrialSpec, plan: FinalPlan, dataset: DataSet, seed: int, precision: str
) -> tuple[TrialSpec, Trained, str]:
    """Train the final model as `plan` says; returns the spec it trained with, the training, and the card's rule."""
    if plan.deadline is None:
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=plan.epochs))
        return spec, train_once(spec, dataset.x_train, dataset.y_train, seed=seed, precision=precision), plan.rule
    most = max(plan.epochs, plan.max_epochs or plan.epochs)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=most, lr_schedule="none"))
    steps = math.ceil(len(dataset.y_train) / spec.train.batch_size)
    schedule = fitted_cosine(spec.train.learning_rate, plan.epochs, steps, plan.deadline, most)
    trained = train_once(spec, dataset.x_train, dataset.y_train, seed=seed, callbacks=[schedule], precision=precision)
    ran = len(trained.history.get("loss", []))
    done = schedule.steps_done / steps
    rule = plan.rule
    if abs(done - plan.epochs) > 1e-9:
        rule = f"{rule}; re-fitted to the measured speed, it trained {done:.2f} epochs ({schedule.steps_done} steps)"
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=ran)), trained, rule


def export_trial(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    config: StudyConfig,
    dataset: DataSet,
    test: tuple[np.ndarray, np.ndarray],
    out: Path,
    store: Any,
    plan: FinalPlan | None = None,
) -> ExportedModel:
    """Retrain (as `plan` says, else as plan_final_training says), test once, save the model, its card and plots.

    With `config.test_time_flips` on, the saved model averages its probabilities over the image and the mirrors
    it trained with (tuner.results.mirrors).
    """
    spec = trial_spec(trial, config, dataset)
    dataset = dataset.at_size(spec.model.input_shape[0])  # an image folder at the trial's size
    if tuple(dataset.input_shape) != tuple(test[0].shape[1:]):
        test = dataset.test_split()
    plan = plan or plan_final_training(trial, spec, config.final_epochs, config.final_budget, len(dataset.y_train))
    seed = TrialRecord.of(trial).seed
    seed = config.seed + trial.number if seed is None else seed
    precision = resolve_precision(config.precision)
    spec, trained, rule = _final_training(spec, plan, dataset, seed, precision)
    flips = exported_flips(config.test_time_flips, spec.model.augmentation)
    served = mirror_averaged(trained.model, flips)
    x_test, y_test = test
    evaluation = evaluate(served, x_test, y_test)

    remove_partials(out)  # what a killed export or budget run left; a live writer's files stay
    stem = out / f"trial-{trial.number}"
    written = formats.write_formats(served, stem, config.export_formats, x_test, evaluation.probabilities)
    model_path = written.paths["keras"]
    title = f"{study.study_name}, trial {trial.number}"
    cv = TrialRecord.of(trial).cv
    curves = plots.learning_curves(Path(f"{stem}.curves.png"), trained.history, cv.cv_history if cv else None, title)
    figures = card.held_out_figures(evaluation.predictions, y_test, dataset.class_names)
    confusion = plots.confusion_matrix(
        Path(f"{stem}.confusion.png"),
        np.array(figures["confusion_matrix"]),
        dataset.class_names,
        f"{title}: test accuracy {evaluation.accuracy:.4f}",
    )
    artifact_ids = {path.name: attach_to_trial(study, trial.number, path, store) for path in (curves, confusion)}
    model_card = card.build_card(
        study=study,
        trial=trial,
        config=config,
        spec=spec,
        model=trained.model,
        dataset=dataset,
        test=test,
        evaluation=evaluation,
        figures=figures,
        train_seconds=trained.seconds,
        precision=precision,
        epochs_rule=rule,
        seed=seed,
        history=trained.history,
        baseline=best_baseline(study),
        model_file=model_path.name,
        artifact_ids=artifact_ids,
    )
    model_card["model_sha256"] = sha256_of(model_path)  # the card names exactly this file
    model_card["test_time_flips"] = list(flips)
    model_card["formats"] = {**written.card, **{name: {"rejected": why} for name, why in written.rejected.items()}}
    card_md = write_text(Path(f"{stem}.card.md"), card.to_markdown(model_card))
    card_json = write_text(Path(f"{stem}.card.json"), json.dumps(model_card, indent=2) + "\n")  # last: "done"
    for path in (card_json, card_md):
        artifact_ids[path.name] = attach_to_trial(study, trial.number, path, store)
    # the dashboard shows the card as the trial's note, its plots served from the trial's artifacts
    write_trial_note(
        study,
        trial.number,
        card.to_markdown(model_card, lambda name: artifact_link(study, trial.number, artifact_ids[name])),
    )
    # No release here: the next training releases first, inside its deadline. Freeing a trained model
    # (clear_session) has taken from 0.3 s to 18 s on the 2-core CPU, mostly waiting idle in native code:
    # too long a tail between a budget's last fit and its card
    trained.model = served = None
    return ExportedModel(
        trial.number,
        model_path,
        [*written.paths.values(), curves, confusion, card_json, card_md],
        artifact_ids,
        evaluation.accuracy,
        spec.train.epochs,
        rule,
        evaluation,
        dataset.input_shape,
        written.paths,
    )
