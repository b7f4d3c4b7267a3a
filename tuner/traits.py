"""What a search space must know about the data: its traits.

A space cannot flip digits, augment 8x8 images, weigh balanced classes or
start from pretrained weights unless it knows the data. The objective builds
these traits once per study and hands them to `suggest(..., traits=...)`;
without them a space behaves as it always did.
"""

from __future__ import annotations

from tuner import augmentation, class_weights, pretrained
from tuner.config import StudyConfig
from tuner.data import DataSet


def data_traits(config: StudyConfig, dataset: DataSet) -> dict:
    """The traits of `dataset` under the study's settings (empty when nothing applies)."""
    traits: dict = {}
    sizes = config.image_size if isinstance(config.image_size, list) else [config.image_size]
    if len(sizes) > 1 and config.folder_options():
        traits["image_sizes"] = sorted(sizes)
    smallest = min(sizes) if len(sizes) > 1 else dataset.input_shape[0]
    kinds = augmentation.applicable(dataset.name, (smallest, smallest), config.augmentation)
    if kinds:
        traits["augmentations"] = kinds
    if config.class_weights is True or (config.class_weights == "auto" and class_weights.is_unbalanced(dataset.y_train)):
        traits["class_weights"] = True
    if config.pretrained:
        traits["pretrained"] = pretrained.read_architecture(config.pretrained, dataset.input_shape)
    return traits
