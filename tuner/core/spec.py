"""Plain descriptions of a model and of how to train it.

A search space turns an Optuna trial into a `TrialSpec`; `tuner.training.models` turns a
`ModelSpec` into a Keras model. Keeping the description a frozen dataclass
means a seed baseline is just a fixed value, a model card can print it, and
export can rebuild it without Optuna or the space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

AUGMENTATION_KINDS = ("horizontal", "vertical", "rotation", "translation", "zoom")
CLASS_WEIGHT_FORMULAS = ("none", "max_over_count", "total_over_classes")
OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta", "rmsprop", "nadam")
LR_SCHEDULES = ("none", "exponential", "cosine", "plateau")


FLIP_PARAMETER = "augment_flip"  # the parameter a space draws the flip mode under, among flip_choices(kinds)


def flip_choices(kinds: tuple[str, ...]) -> list[str]:
    """The flip modes that augmentation `kinds` allow, "none" first."""
    choices = ["none"] + [kind for kind in ("horizontal", "vertical") if kind in kinds]
    if "horizontal" in kinds and "vertical" in kinds:
        choices.append("horizontal_and_vertical")
    return choices


@dataclass(frozen=True)
class ConvBlock:
    """`convs` convolutions, then optional pooling, then optional dropout."""

    filters: int
    kernel_size: int
    convs: int = 1
    pooling: str | None = "max"  # "max", "average" or None
    dropout: float = 0.0


@dataclass(frozen=True)
class Augmentation:
    """Random training-time changes to the images (tuner.training.augmentation); all off by default."""

    flip: str = "none"  # "none", "horizontal", "vertical" or "horizontal_and_vertical"
    rotation: float = 0.0  # fraction of a full turn, as keras.layers.RandomRotation
    translation: float = 0.0  # fraction of height and width
    zoom: float = 0.0  # fraction of the image size

    @property
    def active(self) -> bool:
        return self.flip != "none" or self.rotation > 0 or self.translation > 0 or self.zoom > 0


@dataclass(frozen=True)
class ModelSpec:
    """The architecture: conv blocks, a dense head, regularisation."""

    input_shape: tuple[int, int, int]
    num_classes: int
    blocks: tuple[ConvBlock, ...]
    padding: str = "valid"
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    batch_norm: bool = False
    conv_l2: float = 0.0
    pool_size: int = 2
    pool_strides: int = 2
    dense_units: tuple[int, ...] = ()
    dense_l2: float = 0.0
    head_dropout: float = 0.0
    augmentation: Augmentation = field(default_factory=Augmentation)
    pretrained: str | None = None  # folder written by `tuner pretrain`: its conv weights start this model
    freeze_pretrained: bool = False  # True: those conv layers are not trained
    # A model of the user's own (search_spaces.model_function): its Keras JSON, which replaces the fields above
    # (blocks empty), and its multiply-adds per image as counted from its layers
    keras_config: str | None = None
    keras_multiply_adds: int = 0

    def multiply_adds(self) -> int:
        """Multiply-adds per image of the convolutions and dense layers: what training time scales with."""
        if self.keras_config is not None:
            return self.keras_multiply_adds
        height, width, channels = self.input_shape
        total = 0
        for block in self.blocks:
            for _ in range(block.convs):
                if self.padding == "valid":
                    height, width = max(1, height - block.kernel_size + 1), max(1, width - block.kernel_size + 1)
                total += height * width * channels * block.filters * block.kernel_size**2
                channels = block.filters
            if block.pooling:
                if self.padding == "valid":
                    height = max(1, (height - self.pool_size) // self.pool_strides + 1)
                    width = max(1, (width - self.pool_size) // self.pool_strides + 1)
                else:
                    height, width = -(-height // self.pool_strides), -(-width // self.pool_strides)
        features = height * width * channels
        for units in (*self.dense_units, self.num_classes):
            total += features * units
            features = units
        return total

    def problems(self) -> list[str]:
        """Why this architecture cannot be built (empty when it can)."""
        issues = []
        height, width = self.input_shape[:2]
        for index, block in enumerate(self.blocks):
            for _ in range(block.convs):
                if self.padding == "valid":
                    if min(height, width) < block.kernel_size:
                        issues.append(
                            f"block {index}: a {block.kernel_size}x{block.kernel_size} 'valid' "
                            f"convolution does not fit a {height}x{width} feature map"
                        )
                        return issues
                    height, width = height - block.kernel_size + 1, width - block.kernel_size + 1
            if block.pooling:
                if self.padding == "valid" and min(height, width) < self.pool_size:
                    issues.append(
                        f"block {index}: {self.pool_size}x{self.pool_size} pooling does not fit a "
                        f"{height}x{width} feature map"
                    )
                    return issues
                if self.padding == "valid":
                    height = (height - self.pool_size) // self.pool_strides + 1
                    width = (width - self.pool_size) // self.pool_strides + 1
                else:
                    height = -(-height // self.pool_strides)
                    width = -(-width // self.pool_strides)
        return issues


@dataclass(frozen=True)
class TrainSpec:
    """The optimiser, its learning-rate schedule, batch size and epochs."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    lr_schedule: str = "none"  # "none", "exponential", "cosine", "plateau"
    lr_decay_rate: float = 0.9  # per epoch, for "exponential"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    batch_size: int = 32
    epochs: int = 10
    class_weight: str = "none"  # "none", "max_over_count", "total_over_classes" (tuner.training.class_weights)


@dataclass(frozen=True)
class TrialSpec:
    """What one trial trains: an architecture and a training recipe."""

    model: ModelSpec
    train: TrainSpec = field(default_factory=TrainSpec)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly data; `from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        """The spec that `to_dict` wrote (stored on each trial, read by export and predict)."""
        model = dict(data["model"])
        model["input_shape"] = tuple(model["input_shape"])
        model["blocks"] = tuple(ConvBlock(**block) for block in model["blocks"])
        model["dense_units"] = tuple(model["dense_units"])
        if "augmentation" in model:
            model["augmentation"] = Augmentation(**model["augmentation"])
        return cls(model=ModelSpec(**model), train=TrainSpec(**data["train"]))
