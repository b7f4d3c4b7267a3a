"""The data's traits under a study's settings, and the device's (tuner.core.traits), built once per process."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import optuna

from tuner.core.settings import StudyConfig
from tuner.core.spec import FLIP_PARAMETER
from tuner.core.traits import DataTraits
from tuner.data.dataset import DataSet
from tuner.data.suitability import applicable_augmentations, is_unbalanced, mirror_keeping_flips, with_flips
from tuner.training.device import accelerator
from tuner.training.pretrained import read_architecture

# On a GPU a batch below this leaves it mostly idle (an H100 trains a small CNN on Fashion-MNIST
# at batch 128 in 0.9 s an epoch, on about 1% of the chip): the space draws from here up.
GPU_MIN_BATCH_SIZE = 128


def data_traits(config: StudyConfig, dataset: DataSet, recipe_fixed: bool = False) -> DataTraits:
    """What the space must know of `dataset` and the device: image sizes to tune, augmentations, class weights,
    pretrained start, on a GPU the smallest batch size worth drawing; `recipe_fixed` when the strategy sets
    the epochs and the learning-rate schedule."""
    sizes = config.image_size if isinstance(config.image_size, list) else [config.image_size]
    tuned_sizes = tuple(sorted(sizes)) if len(sizes) > 1 and config.is_folder() else ()
    smallest = min(sizes) if len(sizes) > 1 else dataset.input_shape[0]
    return DataTraits(
        image_sizes=tuned_sizes,
        augmentations=applicable_augmentations(
            dataset.name, (smallest, smallest), config.augmentation, lambda: mirror_keeping_flips(dataset)
        ),
        class_weights=config.class_weights is True or (config.class_weights == "auto" and is_unbalanced(dataset.y_train)),
        pretrained=read_architecture(config.pretrained, dataset.input_shape) if config.pretrained else None,
        min_batch_size=GPU_MIN_BATCH_SIZE if accelerator() == "gpu" else 0,
        recipe_fixed=recipe_fixed,
    )


def drawn_flips(traits: DataTraits, trials: Iterable[optuna.trial.FrozenTrial]) -> DataTraits:
    """`traits` with the flips that a study's trials were drawn among, where those differ from the data's.

    Optuna refuses a categorical parameter whose choices change within a
    study, and the flips measured on an image folder (the mirror test) can
    differ from a resumed study's: its images changed, or an earlier version
    admitted other flips. The study's own choices win, so it goes on.
    """
    if not traits.augmentations:
        return traits  # no augmentation now: nothing is drawn, nothing can clash
    for trial in trials:
        drawn = trial.distributions.get(FLIP_PARAMETER)
        if isinstance(drawn, optuna.distributions.CategoricalDistribution):
            return dataclasses.replace(traits, augmentations=with_flips(traits.augmentations, drawn.choices))
    return traits
