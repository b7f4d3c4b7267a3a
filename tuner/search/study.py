"""Create or resume a study, and everything a run and a worker both do before the first trial.

The study remembers the settings that give its values meaning (data, folds,
epochs...: `StudyConfig.identity()`), so a resumed study cannot silently mix
incomparable trials. `prepare` loads the data and the space and checks them
before any study is touched; `open_study` and `enqueue_baselines` then set
the study up the same way for `tuner run` and for every worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

import search_spaces
from tuner.core import record
from tuner.core.errors import TunerError
from tuner.core.settings import StudyConfig
from tuner.core.space import SearchSpace
from tuner.data import DataSet, load_study_data
from tuner.data.suitability import class_counts
from tuner.search.objective import Objective, spec_for_params
from tuner.search.samplers import make_sampler
from tuner.storage.storages import open_storage
from tuner.storage.urls import mask_url

METRIC_NAMES = {
    "accuracy": "cv_val_accuracy",
    "time": "seconds_per_fold",
    "params": "trainable_params",
    "latency": "batch1_latency_ms",
}
DIRECTIONS = {
    "accuracy": optuna.study.StudyDirection.MAXIMIZE,
    "time": optuna.study.StudyDirection.MINIMIZE,
    "params": optuna.study.StudyDirection.MINIMIZE,
    "latency": optuna.study.StudyDirection.MINIMIZE,
}
IDENTITY_ATTR = "config"  # the study user attribute that keeps StudyConfig.identity()

log = logging.getLogger("tuner")


@dataclass
class Prepared:
    """What a run or a worker needs besides the study: the data, the space, the objective."""

    config: StudyConfig
    dataset: DataSet
    space: SearchSpace
    objective: Objective


def prepare(
    config: StudyConfig,
    verbose: int = 0,
    recipe_fixed: bool = False,
    dataset: DataSet | None = None,
    space: SearchSpace | None = None,
) -> Prepared:
    """Load the data set and the space and build the objective; fails in one line before any study is touched.

    `recipe_fixed`: the strategy sets the epochs and the learning-rate schedule, so the space draws neither.
    `dataset`, `space`: given by the caller (the Python API) instead of loaded by the config's names.
    """
    space = space or search_spaces.get_space(config.space)
    if dataset is None:
        dataset = load_study_data(config)
    return Prepared(config, dataset, space, Objective(config, dataset, space, verbose, recipe_fixed))


def check_folds(folds: int, dataset: DataSet) -> None:
    """Stratified K-fold needs at least K images of every class in the training split."""
    counts = class_counts(dataset.y_train, dataset.num_classes)
    smallest = int(counts.argmin())
    if counts[smallest] < folds:
        raise TunerError(
            f"--folds {folds} is more than class {dataset.class_names[smallest]!r} has training images "
            f"({counts[smallest]}); use --folds {max(2, int(counts[smallest]))} or fewer, or add images"
        )


def open_study(
    config: StudyConfig,
    storage_url: str | None = None,
    study_name: str | None = None,
    create: bool = True,
    seed_offset: int = 0,
    storage: Any = None,
    pruner: optuna.pruners.BasePruner | None = None,
    resumable: Callable[[optuna.Study], None] | None = None,
) -> optuna.Study:
    """Load the study if it exists, else create it (`create=True`).

    A run checks that the stored settings match the config, so a resumed study
    never mixes incomparable trials, and lets its strategy refuse a study
    searched on other terms (`resumable` raises); reading a study
    (`create=False`, for report or export) takes it as it is. Workers pass
    their own `storage` (with their heartbeat settings).
    """
    storage = storage or open_storage(storage_url)
    name = study_name or config.name
    shown = mask_url(storage_url or "the default storage")
    try:
        existing = name in optuna.get_all_study_names(storage)
    except Exception as error:
        raise TunerError(f"cannot read studies from {shown}: {error}") from None
    sampler, pruner = make_sampler(config, seed_offset), pruner or optuna.pruners.NopPruner()
    if existing:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        stored = study.user_attrs.get(IDENTITY_ATTR)
        if stored and create:
            differences = [
                f"{key}={stored[key]!r} (now {value!r})"
                for key, value in config.identity().items()
                if key in stored and stored[key] != value
            ]
            if differences:
                raise TunerError(
                    f"study {name!r} was created with {', '.join(differences)}; "
                    "use the same settings to continue it, or a new --study-name"
                )
            if resumable is not None:
                resumable(study)
        return study
    if not create:
        raise TunerError(f"no study named {name!r} in {shown}; run it first")
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
        directions=[DIRECTIONS[o] for o in config.objectives],
    )
    study.set_metric_names([METRIC_NAMES[o] for o in config.objectives])
    study.set_user_attr(IDENTITY_ATTR, config.identity())
    study.set_user_attr("description", config.description)
    study.set_user_attr("steps", f"step = fold_index * {config.epochs} + epoch_index (both 0-based)")
    return study


def enqueue_baselines(study: optuna.Study, config: StudyConfig, dataset: DataSet, space: SearchSpace) -> list[str]:
    """Enqueue the space's hand-made baselines that fit the data and are not in the study yet; returns their names."""
    if config.baselines is False or config.baselines == [] or config.pretrained:
        return []  # (a pretrained study's conv layers are fixed: the seed models do not apply)
    names = list(space.baselines) if config.baselines is True else list(config.baselines)
    unknown = [n for n in names if n not in space.baselines]
    if unknown:
        raise TunerError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(space.baselines)}")
    already = {record.TrialRecord.of(t).baseline for t in study.get_trials(deepcopy=False)}
    enqueued = []
    for name in names:
        params = {**space.trait_defaults, **space.baselines[name], "epochs": config.epochs}
        if name in already or spec_for_params(space, params, dataset, config.epochs).model.problems():
            continue  # there already, or does not fit this data set's image size
        study.enqueue_trial(params, user_attrs={record.BASELINE: name})
        enqueued.append(name)
    return enqueued


def record_data_notes(study: optuna.Study, dataset: DataSet) -> None:
    """Log what loading skipped (an image folder's unreadable files) and keep it in the study's user attributes."""
    notes = dataset.notes
    if notes.get("unreadable_images"):
        log.warning(
            "tuner: skipped %d unreadable image(s) in %s, e.g. %s",
            notes["unreadable_images"],
            dataset.source,
            notes["unreadable_examples"][0],
        )
    for key, value in notes.items():
        study.set_user_attr(key, value)
