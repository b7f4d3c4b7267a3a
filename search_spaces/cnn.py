"""The default CNN space: every knob the seed authors turned by hand.

Conv blocks (count, convs per block, filters, kernel 3/5/7/9, pooling and its
size and stride, dropout), padding, activation, initializer, batch norm, L2 on
conv and dense kernels, the dense head (none to two layers), head dropout,
optimizer, learning rate and its decay, batch size and epochs. A parameter is
only suggested where it applies (no dropout rate when dropout is off). On a
GPU (the traits' `min_batch_size`) batch sizes are drawn from 128 up.

Its portfolio of known-good starts, which a `--budget` run judges first, is
read from cnn_portfolio.json, which benchmarks/portfolio.py builds.

Architectures that cannot be built (a "valid" 9x9 convolution on a 4x4 map)
are not filtered here; the objective rejects them by `ModelSpec.problems()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuner.core.space import ParameterSource, Space
from tuner.core.spec import (
    CLASS_WEIGHT_FORMULAS,
    FLIP_PARAMETER,
    Augmentation,
    ConvBlock,
    ModelSpec,
    TrainSpec,
    TrialSpec,
    flip_choices,
)
from tuner.core.traits import DataTraits, PretrainedConv

MAX_BLOCKS = 3
MAX_DENSE_LAYERS = 2
KERNEL_SIZES = (3, 5, 7, 9)
ACTIVATIONS = ("relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")
INITIALIZERS = ("he_uniform", "he_normal", "glorot_uniform", "lecun_normal")
OPTIMIZERS = ("sgd", "adam", "adamw", "nadam", "rmsprop", "adadelta")
SCHEDULES = ("none", "exponential", "cosine", "plateau")
BATCH_SIZES = (16, 1024)  # drawn log-uniformly; on a GPU from the traits' min_batch_size up


def _optional_rate(trial: ParameterSource, name: str, low: float, high: float, log: bool = False) -> float:
    """A switch `name` and, only when it is on, its rate `name_rate`."""
    if trial.suggest_categorical(name, [False, True]):
        return trial.suggest_float(f"{name}_rate", low, high, log=log)
    return 0.0


def _augmentation(trial: ParameterSource, kinds: tuple[str, ...]) -> Augmentation:
    """Each kind the data admits on or off, with its strength tuned when on."""
    if not kinds:
        return Augmentation()
    flips = flip_choices(kinds)
    return Augmentation(
        flip=trial.suggest_categorical(FLIP_PARAMETER, flips) if len(flips) > 1 else "none",
        rotation=_optional_rate(trial, "augment_rotation", 0.02, 0.25) if "rotation" in kinds else 0.0,
        translation=_optional_rate(trial, "augment_translation", 0.02, 0.2) if "translation" in kinds else 0.0,
        zoom=_optional_rate(trial, "augment_zoom", 0.02, 0.3) if "zoom" in kinds else 0.0,
    )


def _suggest(
    trial: ParameterSource, input_shape: tuple[int, int, int], num_classes: int, max_epochs: int, traits: DataTraits
) -> TrialSpec:
    """A trial's spec. `traits` opens the image-folder knobs; with none, the core space."""
    if traits.image_sizes:
        side = trial.suggest_categorical("image_size", list(traits.image_sizes))
        input_shape = (side, side, input_shape[-1])
    if traits.pretrained:
        return _suggest_from_pretrained(trial, input_shape, num_classes, max_epochs, traits, traits.pretrained)
    blocks = []
    for index in range(trial.suggest_int("n_blocks", 1, MAX_BLOCKS)):
        pooling = trial.suggest_categorical(f"pooling_{index}", ["max", "average", "none"])
        blocks.append(
            ConvBlock(
                filters=trial.suggest_int(f"filters_{index}", 8, 256, log=True),
                kernel_size=trial.suggest_categorical(f"kernel_size_{index}", list(KERNEL_SIZES)),
                convs=trial.suggest_int(f"convs_{index}", 1, 3),
                pooling=None if pooling == "none" else pooling,
                dropout=_optional_rate(trial, f"block_dropout_{index}", 0.05, 0.5),
            )
        )
    pool_size, pool_strides = 2, 2
    if any(block.pooling for block in blocks):
        pool_size = trial.suggest_categorical("pool_size", [2, 3])
        pool_strides = trial.suggest_categorical("pool_strides", [2, 3]) if pool_size == 3 else 2
    head = _head(trial)  # drawn here, before the rest, as always: seeded samplers draw the same sequence
    model = ModelSpec(
        input_shape=input_shape,
        num_classes=num_classes,
        blocks=tuple(blocks),
        padding=trial.suggest_categorical("padding", ["same", "valid"]),
        activation=trial.suggest_categorical("activation", list(ACTIVATIONS)),
        kernel_initializer=trial.suggest_categorical("kernel_initializer", list(INITIALIZERS)),
        batch_norm=trial.suggest_categorical("batch_norm", [False, True]),
        conv_l2=_optional_rate(trial, "conv_l2", 1e-5, 1e-1, log=True),
        pool_size=pool_size,
        pool_strides=pool_strides,
        **head,
        augmentation=_augmentation(trial, traits.augmentations),
    )
    return TrialSpec(model=model, train=_train(trial, max_epochs, traits))


def _head(trial: ParameterSource) -> dict[str, Any]:
    """The dense head, shared by both model families: layers, widths, L2 and dropout."""
    dense_units = tuple(
        trial.suggest_int(f"dense_units_{index}", 16, 512, log=True)
        for index in range(trial.suggest_int("dense_layers", 0, MAX_DENSE_LAYERS))
    )
    return dict(
        dense_units=dense_units,
        dense_l2=_optional_rate(trial, "dense_l2", 1e-5, 1e-1, log=True) if dense_units else 0.0,
        head_dropout=_optional_rate(trial, "head_dropout", 0.05, 0.6),
    )


def _suggest_from_pretrained(
    trial: ParameterSource,
    input_shape: tuple[int, int, int],
    num_classes: int,
    max_epochs: int,
    traits: DataTraits,
    conv: PretrainedConv,
) -> TrialSpec:
    """The conv layers are the pretrained ones; tune the head, the training, and fine-tune vs freeze."""
    head = _head(trial)
    model = ModelSpec(
        input_shape=input_shape,
        num_classes=num_classes,
        blocks=conv.blocks,
        padding=conv.padding,
        activation=conv.activation,
        kernel_initializer=conv.kernel_initializer,
        batch_norm=conv.batch_norm,
        conv_l2=conv.conv_l2,
        pool_size=conv.pool_size,
        pool_strides=conv.pool_strides,
        **head,
        augmentation=_augmentation(trial, traits.augmentations),
        pretrained=conv.path,
        freeze_pretrained=trial.suggest_categorical("pretrained_start", ["fine-tune", "freeze"]) == "freeze",
    )
    return TrialSpec(model=model, train=_train(trial, max_epochs, traits))


def _smallest_batch(traits: DataTraits) -> int:
    """The low end of the batch sizes: the space's own, or the device's (a GPU: 128) when larger.

    The parameter keeps its name and its log scale on every device, so that
    one study can take trials from CPU and GPU workers alike; a seed
    baseline keeps its own batch size even below the GPU's range.
    """
    return min(max(BATCH_SIZES[0], traits.min_batch_size), BATCH_SIZES[1])


def _train(trial: ParameterSource, max_epochs: int, traits: DataTraits) -> TrainSpec:
    """The optimiser and its schedule, batch size and epochs; under a time budget the plan sets epochs and schedule."""
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    schedule = "cosine" if traits.recipe_fixed else trial.suggest_categorical("lr_schedule", list(SCHEDULES))
    train = TrainSpec(
        optimizer=optimizer,
        learning_rate=trial.suggest_float("learning_rate", 1e-4, 1.0, log=True),
        momentum=trial.suggest_float("momentum", 0.0, 0.99) if optimizer == "sgd" else 0.0,
        lr_schedule=schedule,
        lr_decay_rate=trial.suggest_float("lr_decay_rate", 0.5, 0.99) if schedule == "exponential" else 0.9,
        plateau_factor=trial.suggest_float("plateau_factor", 0.1, 0.7) if schedule == "plateau" else 0.5,
        plateau_patience=trial.suggest_int("plateau_patience", 1, 3) if schedule == "plateau" else 2,
        batch_size=trial.suggest_int("batch_size", _smallest_batch(traits), BATCH_SIZES[1], log=True),
        epochs=max_epochs if traits.recipe_fixed else trial.suggest_int("epochs", max(1, (max_epochs + 1) // 2), max_epochs),
        class_weight=(
            trial.suggest_categorical("class_weight", list(CLASS_WEIGHT_FORMULAS)) if traits.class_weights else "none"
        ),
    )
    return train


# --- The hand-made models of ../shared/seeds, as parameter sets of this space.
# `epochs` is left out: a baseline trains for the study's epochs, like every trial.

_OFF = {"conv_l2": False, "head_dropout": False, "batch_norm": False, "lr_schedule": "none"}
_SEED000 = {
    **_OFF,
    "activation": "relu",
    "kernel_initializer": "he_uniform",
    "optimizer": "sgd",
    "learning_rate": 0.01,
    "momentum": 0.9,
    "batch_size": 32,
}


def _block(
    index: int, filters: int, kernel: int = 3, convs: int = 1, pooling: str = "max", dropout: float = 0.0
) -> dict[str, Any]:
    params = {
        f"filters_{index}": filters,
        f"kernel_size_{index}": kernel,
        f"convs_{index}": convs,
        f"pooling_{index}": pooling,
        f"block_dropout_{index}": dropout > 0,
    }
    if dropout > 0:
        params[f"block_dropout_{index}_rate"] = dropout
    return params


# Where the data opens more knobs (its traits), a baseline runs with them off.
TRAIT_DEFAULTS = {
    "augment_flip": "none",
    "augment_rotation": False,
    "augment_translation": False,
    "augment_zoom": False,
    "class_weight": "none",
}

_DENSE = {"dense_l2": False}  # the dense-L2 switch exists only when there is a dense layer
_V1 = {
    **_SEED000,
    **_DENSE,
    "n_blocks": 1,
    **_block(0, 32),
    "pool_size": 2,
    "padding": "valid",
    "dense_layers": 1,
    "dense_units_0": 100,
}

BASELINES: dict[str, dict[str, Any]] = {
    # seed 000: Fashion-MNIST, iterated K-fold
    "seed000-v1": _V1,
    "seed000-overfit": {
        **_SEED000,
        **_DENSE,
        "n_blocks": 3,
        **_block(0, 64, pooling="none"),
        **_block(1, 128, pooling="none"),
        **_block(2, 256, pooling="none"),
        "padding": "same",
        "dense_layers": 1,
        "dense_units_0": 100,
    },
    "seed000-v2": {**_V1, "filters_0": 64, "padding": "same"},
    "seed000-v3": {**_V1, "filters_0": 32, "padding": "same", "conv_l2": True, "conv_l2_rate": 1e-3},
    "seed000-v4": {
        **_V1,
        "filters_0": 64,
        "padding": "same",
        "conv_l2": True,
        "conv_l2_rate": 1e-3,
        "dense_l2": True,
        "dense_l2_rate": 1e-3,
    },
    "seed000-v5": {
        **_V1,
        "filters_0": 64,
        "padding": "same",
        "conv_l2": True,
        "conv_l2_rate": 1e-3,
        "dense_l2": True,
        "dense_l2_rate": 1e-3,
        "head_dropout": True,
        "head_dropout_rate": 0.2,
    },
    "seed000-VII": {
        **_SEED000,
        "n_blocks": 1,
        **_block(0, 64, convs=2),
        "pool_size": 3,
        "pool_strides": 2,
        "padding": "same",
        "conv_l2": True,
        "conv_l2_rate": 1e-3,
        "dense_layers": 0,
    },
    "seed000-VIII": {
        **_SEED000,
        "n_blocks": 1,
        **_block(0, 32, convs=2),
        "pool_size": 3,
        "pool_strides": 2,
        "padding": "same",
        "conv_l2": True,
        "conv_l2_rate": 1e-2,
        "dense_layers": 0,
    },
    # seed 001: one Fashion-MNIST model with plots
    "seed001": {
        **_OFF,
        **_DENSE,
        "n_blocks": 2,
        **_block(0, 32, kernel=5),
        **_block(1, 72, kernel=5, dropout=0.25),
        "pool_size": 2,
        "padding": "same",
        "activation": "relu",
        "kernel_initializer": "glorot_uniform",
        "dense_layers": 1,
        "dense_units_0": 256,
        "head_dropout": True,
        "head_dropout_rate": 0.5,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "batch_size": 300,
    },
    # seed 003: MNIST, speed vs accuracy (Adadelta at Keras 2's learning rate of 1.0)
    "seed003-original": {
        **_OFF,
        **_DENSE,
        "n_blocks": 2,
        **_block(0, 32, pooling="none"),
        **_block(1, 64, dropout=0.25),
        "pool_size": 2,
        "padding": "valid",
        "activation": "relu",
        "kernel_initializer": "glorot_uniform",
        "dense_layers": 1,
        "dense_units_0": 128,
        "head_dropout": True,
        "head_dropout_rate": 0.5,
        "optimizer": "adadelta",
        "learning_rate": 1.0,
        "batch_size": 256,
    },
    "seed003-improved": {
        **_OFF,
        "n_blocks": 2,
        **_block(0, 32, kernel=9, pooling="none"),
        **_block(1, 64, dropout=0.25),
        "pool_size": 2,
        "padding": "valid",
        "activation": "relu",
        "kernel_initializer": "glorot_uniform",
        "dense_layers": 0,
        "head_dropout": True,
        "head_dropout_rate": 0.25,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "batch_size": 1024,
    },
}


# --- The space's own known-good starts (not a seed's), which a budget search judges first, at rung 0 like any draw;
# TPE learns from them like from any trial. They are data, in cnn_portfolio.json, which benchmarks/portfolio.py
# writes: greedily chosen from the training-split hold-out accuracies of many candidates across the benchmark suite
# (and, until that evaluation is run, the hand-picked starts: the file says which). Where the data does not draw a
# parameter (no flips on digits, 8x8 images), a start's value for it is ignored.

PORTFOLIO_FILE = Path(__file__).with_name("cnn_portfolio.json")


def _portfolio(path: Path) -> dict[str, dict[str, Any]]:
    """The starts in the portfolio file, by name, in the order they were chosen."""
    return {start["name"]: start["params"] for start in json.loads(path.read_text())["starts"]}


PORTFOLIO = _portfolio(PORTFOLIO_FILE)


SPACE = Space("cnn", BASELINES, TRAIT_DEFAULTS, _suggest, PORTFOLIO)
