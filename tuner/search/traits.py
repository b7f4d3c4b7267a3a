"""The data's traits under a study's settings (tuner.core.traits), built once per study."""

from __future__ import annotations

from tuner.core.settings import StudyConfig
from tuner.core.traits import DataTraits
from tuner.data.dataset import DataSet
from tuner.data.suitability import applicable_augmentations, is_unbalanced
from tuner.training.pretrained import read_architecture


def data_traits(config: StudyConfig, dataset: DataSet) -> DataTraits:
    """What the space must know of `dataset`: image sizes to tune, augmentations, class weights, pretrained start."""
    sizes = config.image_size if isinstance(config.image_size, list) else [config.image_size]
    tuned_sizes = tuple(sorted(sizes)) if len(sizes) > 1 and config.is_folder() else ()
    smallest = min(sizes) if len(sizes) > 1 else dataset.input_shape[0]
    return DataTraits(
        image_sizes=tuned_sizes,
        augmentations=applicable_augmentations(dataset.name, (smallest, smallest), config.augmentation),
        class_weights=config.class_weights is True or (config.class_weights == "auto" and is_unbalanced(dataset.y_train)),
        pretrained=read_architecture(config.pretrained, dataset.input_shape) if config.pretrained else None,
    )
