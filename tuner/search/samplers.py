"""Samplers and pruners by the names a study file and the flags use: one registry of factories for each.

The names are declared once in tuner.core.settings (SAMPLERS, PRUNERS: the
settings check them without importing Optuna); each registry here files a
factory under every one of those names and refuses any other, so adding a
sampler is one name there and one decorated factory here.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable

import optuna

from tuner.core.errors import TunerError
from tuner.core.registry import Registry
from tuner.core.settings import PRUNERS, SAMPLERS, StudyConfig

SamplerFactory = Callable[[StudyConfig, int], optuna.samplers.BaseSampler]  # (config, seed) -> sampler
PrunerFactory = Callable[[StudyConfig], optuna.pruners.BasePruner]

SAMPLER_REGISTRY: Registry[SamplerFactory] = Registry("sampler", SAMPLERS)
PRUNER_REGISTRY: Registry[PrunerFactory] = Registry("pruner", PRUNERS)


@SAMPLER_REGISTRY.register("tpe")
def _tpe(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=10)


@SAMPLER_REGISTRY.register("random")
def _random(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLER_REGISTRY.register("gp")
def _gp(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed)


@SAMPLER_REGISTRY.register("cmaes")
def _cmaes(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    # CMA-ES handles the numeric knobs; categorical ones fall back to random
    if importlib.util.find_spec("cmaes") is None:  # Optuna imports it only at the first draw: every trial would fail
        raise TunerError("the cmaes sampler needs the cmaes package; run 'pip install cmaes', or choose another --sampler")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


@SAMPLER_REGISTRY.register("nsga2")
def _nsga2(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed)


def make_sampler(config: StudyConfig, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with `seed + seed_offset` (a resumed run or each worker draws anew)."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return SAMPLER_REGISTRY.get(config.sampler)(config, config.seed + seed_offset)


def total_steps(config: StudyConfig) -> int:
    """Intermediate-value steps of a full trial: one per epoch of every fold."""
    return config.folds * config.repeats * config.epochs


@PRUNER_REGISTRY.register("hyperband")
def _hyperband(config: StudyConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=max(1, config.epochs // 3), max_resource=total_steps(config), reduction_factor=3
    )


@PRUNER_REGISTRY.register("median")
def _median(config: StudyConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=config.epochs)  # see a whole first fold


@PRUNER_REGISTRY.register("successive-halving")
def _successive_halving(config: StudyConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, config.epochs // 3))


@PRUNER_REGISTRY.register("wilcoxon")
def _wilcoxon(config: StudyConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=config.epochs)


@PRUNER_REGISTRY.register("none")
def _none(config: StudyConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


SAMPLER_REGISTRY.complete()
PRUNER_REGISTRY.complete()


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """The study's pruner; its steps are the harness' global steps (fold * epochs + epoch)."""
    return PRUNER_REGISTRY.get(config.pruner)(config)
