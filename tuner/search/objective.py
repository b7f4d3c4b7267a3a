"""The glue between Optuna and the harness: trial -> spec -> harness -> value.

Everything the harness measures becomes a trial user attribute (the schema is
tuner.core.record), the trial's full spec among them, and every way a trial
can stop early leaves its reason in the attribute `stopped`. A trial that
reaches its last step completes: a pruner is never asked after all the
training has been paid for.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from tuner.core import record
from tuner.core.settings import StudyConfig
from tuner.core.space import NamedParameters, SearchSpace
from tuner.core.spec import TrialSpec
from tuner.core.traits import DataTraits
from tuner.data.dataset import DataSet
from tuner.search import constraints, curve_pruning
from tuner.search.samplers import total_steps
from tuner.search.trait_detection import data_traits, drawn_flips
from tuner.training import determinism
from tuner.training.device import accelerator
from tuner.training.harness import CVResult, NonFiniteLoss, Reporter, cross_validate
from tuner.training.precision import resolve_precision


def keras_backend() -> str:
    """The Keras backend in use (tensorflow, jax, torch)."""
    import keras

    return str(keras.backend.backend())


def spec_for_params(
    space: SearchSpace, params: Mapping[str, Any], dataset: DataSet, max_epochs: int, traits: DataTraits = DataTraits()
) -> TrialSpec:
    """Rebuild a spec from parameters alone (baselines, portfolio starts, export of stored trials).

    The space's trait defaults fill what `params` lacks. Pass the study's
    `traits` to rebuild augmentation, class weights, image size and
    pretrained starts too.
    """
    return space.suggest(_named(space, params), dataset.input_shape, dataset.num_classes, max_epochs, traits)


def drawn_params(
    space: SearchSpace, params: Mapping[str, Any], dataset: DataSet, max_epochs: int, traits: DataTraits = DataTraits()
) -> dict[str, Any]:
    """What the space draws from a named parameter set on this data: the configuration to enqueue
    (values the data does not admit become the plain choice, tuner.core.space.NamedParameters)."""
    source = _named(space, params)
    space.suggest(source, dataset.input_shape, dataset.num_classes, max_epochs, traits)
    return source.params


def _named(space: SearchSpace, params: Mapping[str, Any]) -> NamedParameters:
    return NamedParameters({**space.trait_defaults, **params})


def objective_values(config: StudyConfig, result: CVResult) -> list[float]:
    """The study's objectives, in order, from the harness' figures."""
    figures: dict[str, float | None] = {
        "accuracy": result.mean_val_accuracy,
        "time": result.seconds_per_fold,
        "params": float(result.trainable_params),
        "latency": result.latency_ms,
    }
    values = [figures[name] for name in config.objectives]
    if None in values:  # the judge measures latency whenever it is an objective
        raise ValueError("the harness did not measure the batch-1 latency; pass measure_latency=True")
    return [float(v) for v in values if v is not None]


class Objective:
    """Callable for `study.optimize`: trains one trial on the study's folds."""

    def __init__(
        self, config: StudyConfig, dataset: DataSet, space: SearchSpace, verbose: int = 0, recipe_fixed: bool = False
    ):
        if config.deterministic:  # first: JAX reads its XLA flag when its GPU backend starts (resolving precision may)
            determinism.enable(config.seed)
        self.config, self.dataset, self.space, self.verbose = config, dataset, space, verbose
        self.traits = data_traits(config, dataset, recipe_fixed)  # checks a pretrained start before any study is touched
        self.precision = resolve_precision(config.precision)

    def keep_drawn_flips(self, study: optuna.Study) -> str:
        """Draw the flips that `study`'s trials were drawn among (see drawn_flips); a line saying so when they
        differ from the data's, else ""."""
        kept = drawn_flips(self.traits, study.get_trials(deepcopy=False))
        if kept == self.traits:
            return ""
        measured, self.traits = self.traits.augmentations, kept
        return (
            f"study {study.study_name!r} keeps the augmentations its trials were drawn among "
            f"({', '.join(kept.augmentations)}); the data now admit {', '.join(measured)}"
        )

    def _reporter(self, trial: optuna.Trial) -> Reporter:
        epochs = self.config.epochs
        last_step = total_steps(self.config) - 1
        if len(self.config.objectives) > 1:  # Optuna cannot report or prune here: see tuner.search.curve_pruning
            return curve_pruning.reporter_for(trial, epochs, self.config.pruner, last_step)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if step < last_step and trial.should_prune():  # the last step's training is paid for: it completes
                fold, epoch = divmod(step, epochs)
                reason = f"pruned at fold {fold + 1}, epoch {epoch + 1} (val accuracy {value:.4f})"
                trial.set_user_attr(record.STOPPED, reason)
                raise optuna.TrialPruned(reason)

        return report

    def suggest(self, trial: optuna.Trial) -> TrialSpec:
        """The trial's spec, stored on the trial; a spec that cannot be built prunes the trial with the reason."""
        with warnings.catch_warnings():  # a seed baseline keeps its own values, e.g. batch 32 on a GPU (from 128)
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            spec = self.space.suggest(
                trial, self.dataset.input_shape, self.dataset.num_classes, self.config.epochs, self.traits
            )
        problems = spec.model.problems()
        if problems:
            trial.set_user_attr(record.STOPPED, f"rejected: {problems[0]}")
            raise optuna.TrialPruned(f"rejected: {problems[0]}")
        trial.set_user_attr(record.SPEC, spec.to_dict())
        return spec

    def judge(self, trial: optuna.Trial, spec: TrialSpec, seed: int, **harness: Any) -> CVResult:
        """Train `spec` with the K-fold harness (`harness`: its options) and record on `trial` what it measured.

        A diverging loss prunes the trial with the fold and epoch; Ctrl-C
        marks it "interrupted by the user". Every figure is stored under the
        names of tuner.core.record.
        """
        dataset = self.dataset.at_size(spec.model.input_shape[0])  # an image size the trial chose
        trial.set_user_attr(record.SEED, seed)
        trial.set_user_attr(record.BACKEND, keras_backend())
        trial.set_user_attr(record.DEVICE, accelerator())
        trial.set_user_attr(record.PRECISION, self.precision)
        trial.set_user_attr(record.DETERMINISTIC, determinism.enabled())
        try:
            result = cross_validate(
                spec,
                dataset.x_train,
                dataset.y_train,
                seed=seed,
                split_seed=self.config.seed,
                verbose=self.verbose,
                precision=self.precision,
                measure_latency="latency" in self.config.objectives,
                **harness,
            )
        except NonFiniteLoss as error:
            trial.set_user_attr(record.STOPPED, str(error))
            raise optuna.TrialPruned(str(error)) from None
        except KeyboardInterrupt:
            trial.set_user_attr(record.STOPPED, "interrupted by the user")
            raise
        for key, value in result.figures().attrs().items():
            trial.set_user_attr(key, value)
        if result.train_seconds_per_image is not None:
            trial.set_user_attr(record.TRAIN_SECONDS_PER_IMAGE, result.train_seconds_per_image)
        constraints.record_feasibility(trial, result.mean_gap, self.config.max_gap)
        return result

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        config = self.config
        spec = self.suggest(trial)
        result = self.judge(
            trial,
            spec,
            config.seed + trial.number,
            folds=config.folds,
            repeats=config.repeats,
            max_epochs=config.epochs,
            reporter=self._reporter(trial),
            early_stopping_patience=config.early_stopping,
        )
        values = objective_values(config, result)
        return values[0] if len(values) == 1 else tuple(values)
