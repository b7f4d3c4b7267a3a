"""The glue between Optuna and the harness: trial -> spec -> harness -> value.

Everything the harness measures becomes a trial user attribute, and every
way a trial can stop early leaves its reason in the attribute `stopped`.
"""

from __future__ import annotations

import optuna

from tuner import constraints, mo_pruning
from tuner.config import StudyConfig
from tuner.data import DataSet
from tuner.harness import CVResult, NonFiniteLoss, cross_validate
from tuner.image_folder import dataset_for_shape
from tuner.traits import data_traits
from tuner.spec import TrialSpec


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def spec_for_params(space, params: dict, dataset: DataSet, max_epochs: int, traits: dict | None = None) -> TrialSpec:
    """Rebuild a trial's spec from its parameters alone (export, baselines, report).

    Pass the study's `traits` (tuner.traits.data_traits) to rebuild augmentation,
    class weights, image size and pretrained starts too.
    """
    extra = {"traits": traits} if traits else {}
    return space.suggest(optuna.trial.FixedTrial(params), dataset.input_shape, dataset.num_classes, max_epochs, **extra)


def objective_values(config: StudyConfig, result: CVResult) -> list[float]:
    """The study's objectives, in order, from the harness' figures."""
    figures = {
        "accuracy": result.mean_val_accuracy,
        "time": result.seconds_per_fold,
        "params": float(result.trainable_params),
    }
    return [figures[name] for name in config.objectives]


class Objective:
    """Callable for `study.optimize`: trains one trial on the study's folds."""

    def __init__(self, config: StudyConfig, dataset: DataSet, space, verbose: int = 0):
        self.config, self.dataset, self.space, self.verbose = config, dataset, space, verbose
        self.traits = data_traits(config, dataset)  # what the space must know of the data (tuner.traits)

    def _reporter(self, trial: optuna.Trial):
        epochs = self.config.epochs
        single_objective = len(self.config.objectives) == 1
        if not single_objective:  # Optuna cannot report or prune here: see tuner/mo_pruning.py
            return mo_pruning.reporter_for(trial, epochs, self.config.pruner)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if single_objective and trial.should_prune():
                fold, epoch = divmod(step, epochs)
                reason = f"pruned at fold {fold + 1}, epoch {epoch + 1} (val accuracy {value:.4f})"
                trial.set_user_attr("stopped", reason)
                raise optuna.TrialPruned(reason)

        return report

    def __call__(self, trial: optuna.Trial):
        config = self.config
        extra = {"traits": self.traits} if self.traits else {}
        spec = self.space.suggest(trial, self.dataset.input_shape, self.dataset.num_classes, config.epochs, **extra)
        dataset = dataset_for_shape(self.dataset, spec.model.input_shape)  # an image size the trial chose
        problems = spec.model.problems()
        if problems:
            trial.set_user_attr("stopped", f"rejected: {problems[0]}")
            raise optuna.TrialPruned(f"rejected: {problems[0]}")
        seed = config.seed + trial.number
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("backend", keras_backend())
        try:
            result = cross_validate(
                spec,
                dataset.x_train,
                dataset.y_train,
                folds=config.folds,
                repeats=config.repeats,
                seed=seed,
                split_seed=config.seed,
                max_epochs=config.epochs,
                reporter=self._reporter(trial),
                early_stopping_patience=config.early_stopping,
                verbose=self.verbose,
            )
        except NonFiniteLoss as error:
            trial.set_user_attr("stopped", str(error))
            raise optuna.TrialPruned(str(error)) from None
        except KeyboardInterrupt:
            trial.set_user_attr("stopped", "interrupted by the user")
            raise
        for key, value in result.summary().items():
            trial.set_user_attr(key, value)
        constraints.record_feasibility(trial, result.mean_gap, config.max_gap)
        values = objective_values(config, result)
        return values[0] if len(values) == 1 else tuple(values)
