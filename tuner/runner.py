"""Create or resume a study, enqueue the seed baselines, and run trials.

Samplers and pruners are chosen by name here; the study remembers the
settings that give its values meaning (data, folds, epochs...), so a resumed
study cannot silently mix incomparable trials.
"""

from __future__ import annotations

import logging
import signal
import warnings

import optuna

import search_spaces
from tuner.config import StudyConfig
from tuner.data import load_dataset
from tuner.errors import TunerError
from tuner.notes import write_study_note
from tuner.image_folder import record_notes
from tuner.objective import Objective, spec_for_params
from tuner.progress import TrialProgress
from tuner.storage import mask_url, open_storage

METRIC_NAMES = {"accuracy": "cv_val_accuracy", "time": "seconds_per_fold", "params": "trainable_params"}
DIRECTIONS = {"accuracy": "maximize", "time": "minimize", "params": "minimize"}


def make_sampler(config: StudyConfig, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    seed = config.seed + seed_offset
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=10)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if config.sampler == "cmaes":  # CMA-ES handles the numeric knobs; categorical ones fall back to random
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.NSGAIISampler(seed=seed)


def total_steps(config: StudyConfig) -> int:
    """Intermediate-value steps of a full trial: one per epoch of every fold."""
    return config.folds * config.repeats * config.epochs


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, config.epochs // 3), max_resource=total_steps(config), reduction_factor=3
        )
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=config.epochs)  # see a whole first fold
    if config.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, config.epochs // 3))
    if config.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=config.epochs)
    return optuna.pruners.NopPruner()


def open_study(
    config: StudyConfig,
    storage_url: str | None = None,
    study_name: str | None = None,
    create: bool = True,
    seed_offset: int = 0,
    storage=None,
) -> optuna.Study:
    """Load the study if it exists, else create it.

    A run (`create=True`) checks the stored settings are comparable with the
    config, so a resumed study never mixes incomparable trials; reading a
    study (`create=False`, for report or export) takes it as it is.
    """
    storage = storage or open_storage(storage_url)  # workers pass one with their heartbeat settings
    name = study_name or config.name
    try:
        existing = name in optuna.get_all_study_names(storage)
    except Exception as error:
        raise TunerError(f"cannot read studies from {mask_url(storage_url or 'the default storage')}: {error}") from None
    sampler, pruner = make_sampler(config, seed_offset), make_pruner(config)
    if existing:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        stored = study.user_attrs.get("config")
        if stored and create:
            differences = [
                f"{key}={stored[key]!r} (now {value!r})"
                for key, value in config.comparable().items()
                if key in stored and stored[key] != value
            ]
            if differences:
                raise TunerError(
                    f"study {name!r} was created with {', '.join(differences)}; "
                    "use the same settings to continue it, or a new --study-name"
                )
        return study
    if not create:
        raise TunerError(f"no study named {name!r} in {mask_url(storage_url or 'the default storage')}; run it first")
    directions = [DIRECTIONS[o] for o in config.objectives]
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, pruner=pruner, directions=directions, load_if_exists=True
    )
    study.set_metric_names([METRIC_NAMES[o] for o in config.objectives])
    study.set_user_attr("config", config.comparable())
    study.set_user_attr("description", config.description)
    study.set_user_attr("steps", f"step = fold_index * {config.epochs} + epoch_index (both 0-based)")
    write_study_note(study)  # what optuna-dashboard shows on the study's page
    return study


def enqueue_baselines(study: optuna.Study, config: StudyConfig, dataset, space) -> list[str]:
    """Enqueue the space's hand-made baselines that fit the data; returns their names."""
    if config.baselines is False or config.baselines == [] or config.pretrained:
        return []  # (a pretrained study's conv layers are fixed: the seed models do not apply)
    names = list(space.BASELINES) if config.baselines is True else list(config.baselines)
    unknown = [n for n in names if n not in space.BASELINES]
    if unknown:
        raise TunerError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(space.BASELINES)}")
    enqueued = []
    already = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)}
    for name in names:
        params = {**getattr(space, "TRAIT_DEFAULTS", {}), **space.BASELINES[name], "epochs": config.epochs}
        if name in already:
            continue
        if spec_for_params(space, params, dataset, config.epochs).model.problems():
            continue  # does not fit this data set's image size
        study.enqueue_trial(params, user_attrs={"baseline": name})
        enqueued.append(name)
    return enqueued


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


class _HideInterruptTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; for Ctrl-C that is noise, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is KeyboardInterrupt)


def run_study(
    config: StudyConfig,
    storage_url: str | None = None,
    study_name: str | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> tuple[optuna.Study, bool]:
    """Run `config.trials` more trials (or until the timeout).

    Returns the study and whether the run was interrupted (Ctrl-C or SIGTERM):
    the trial in flight is then failed with its reason, never left RUNNING.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_spaces.get_space(config.space)
    dataset = load_dataset(config.dataset, config.data_dir, config.subset, config.seed, **config.folder_options())
    objective = Objective(config, dataset, space, verbose)  # checks the data traits before a study is touched
    study = open_study(config, storage_url, study_name)
    already_run = len(study.get_trials(deepcopy=False))
    if already_run:  # a resumed study must not draw the first run's parameters again
        study.sampler = make_sampler(config, seed_offset=already_run)
    record_notes(study, dataset)  # an image folder's unreadable files: in the log and the study
    enqueue_baselines(study, config, dataset, space)
    hide_interrupt = _HideInterruptTraceback()
    handlers = logging.getLogger("optuna").handlers  # child loggers' records pass through these
    for handler in handlers:
        handler.addFilter(hide_interrupt)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    interrupted = False
    with TrialProgress(study, config.trials, enabled=progress) as bar:
        try:
            study.optimize(
                objective,
                n_trials=config.trials,
                timeout=config.timeout,
                callbacks=[bar.on_trial_end],
                catch=(),
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGTERM, previous)
            for handler in handlers:
                handler.removeFilter(hide_interrupt)
    return study, interrupted
