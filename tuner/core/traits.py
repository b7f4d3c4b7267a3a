"""What a search space must know about the data and the device it trains on: its traits.

A space cannot flip digits, augment 8x8 images, weigh balanced classes,
start from pretrained weights or keep a GPU busy unless it knows the data
and the device. The search builds
these traits once per study (tuner.search.trait_detection) and hands them to
`SearchSpace.suggest`; with the empty default a space is its core self.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.core.spec import ConvBlock


@dataclass(frozen=True)
class PretrainedConv:
    """Conv layers written by `tuner pretrain`: a study that starts from them keeps this architecture."""

    path: str
    blocks: tuple[ConvBlock, ...]
    input_channels: int
    padding: str = "same"
    activation: str = "relu"
    kernel_initializer: str = "he_uniform"
    batch_norm: bool = True
    conv_l2: float = 0.0
    pool_size: int = 2
    pool_strides: int = 2


@dataclass(frozen=True)
class DataTraits:
    """The data's traits under a study's settings; all empty when nothing applies."""

    image_sizes: tuple[int, ...] = ()  # sides the space may choose among (image folders)
    augmentations: tuple[str, ...] = ()  # augmentation kinds that suit the data
    class_weights: bool = False  # the classes are unbalanced enough to tune class weights
    pretrained: PretrainedConv | None = None  # conv layers every trial starts from
    min_batch_size: int = 0  # the smallest batch size worth drawing (a GPU idles on small ones); 0: the space's own
    recipe_fixed: bool = (
        False  # the strategy sets the epochs and the learning-rate schedule (a time budget): do not draw them
    )

    def __bool__(self) -> bool:
        return bool(
            self.image_sizes
            or self.augmentations
            or self.class_weights
            or self.pretrained
            or self.min_batch_size
            or self.recipe_fixed
        )
