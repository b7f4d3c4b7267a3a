"""Samplers and pruners by the names a study file and the flags use."""

from __future__ import annotations

import warnings

import optuna

from tuner.core.settings import StudyConfig


def make_sampler(config: StudyConfig, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with `seed + seed_offset` (a resumed run or each worker draws anew)."""
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
    """The study's pruner; its steps are the harness' global steps (fold * epochs + epoch)."""
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
