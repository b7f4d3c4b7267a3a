"""A narrow CNN space for an hour of a small CPU (studies/fashion-hour.toml).

The default space can draw three blocks of three 9x9, 256-filter convolutions:
hours per trial on two cores. This one keeps the family that the benchmark
and the seeds point to for Fashion-MNIST (two 3x3 conv blocks with batch norm
and max pooling, one dense layer, dropout, Adam-like optimisers) and tunes the
knobs that matter within it, so that every trial costs minutes, not hours.

Of the data's traits it honours class weights and leaves
augmentation off: in a 6-epoch search it slows learning more than it helps.
Pretrained starts and tuned image sizes belong to the default `cnn` space.
"""

from __future__ import annotations

from typing import Any

from tuner.core.errors import TunerError
from tuner.core.space import ParameterSource, Space
from tuner.core.spec import CLASS_WEIGHT_FORMULAS, ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.core.traits import DataTraits


def _suggest(
    trial: ParameterSource, input_shape: tuple[int, int, int], num_classes: int, max_epochs: int, traits: DataTraits
) -> TrialSpec:
    """A trial's spec; the traits it cannot honour are refused by name."""
    unsupported = [name for name, value in (("image_sizes", traits.image_sizes), ("pretrained", traits.pretrained)) if value]
    if unsupported:
        raise TunerError(f'the cnn_cpu space does not tune {", ".join(unsupported)}: use space = "cnn" in the study file')
    blocks = []
    for index, (low, high) in enumerate(((16, 48), (32, 96))):
        dropout = trial.suggest_float(f"block_dropout_{index}", 0.0, 0.4)
        blocks.append(
            ConvBlock(
                filters=trial.suggest_int(f"filters_{index}", low, high, step=16),
                kernel_size=3,
                convs=trial.suggest_int(f"convs_{index}", 1, 2),
                pooling="max",
                dropout=dropout,
            )
        )
    model = ModelSpec(
        input_shape=input_shape,
        num_classes=num_classes,
        blocks=tuple(blocks),
        padding="same",
        activation="relu",
        kernel_initializer="he_uniform",
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        dense_units=(trial.suggest_int("dense_units", 64, 256, step=64),),
        head_dropout=trial.suggest_float("head_dropout", 0.0, 0.5),
    )
    optimizer = trial.suggest_categorical("optimizer", ["adam", "adamw", "nadam"])
    train = TrainSpec(
        optimizer=optimizer,
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
        lr_schedule="cosine" if traits.recipe_fixed else trial.suggest_categorical("lr_schedule", ["none", "cosine"]),
        batch_size=trial.suggest_categorical("batch_size", [64, 128, 256]),
        epochs=max_epochs,
        class_weight=(
            trial.suggest_categorical("class_weight", list(CLASS_WEIGHT_FORMULAS)) if traits.class_weights else "none"
        ),
    )
    return TrialSpec(model=model, train=train)


# The benchmark's "large" model (the 2-block CNN with batch norm) and a
# lighter sibling, as warm starts.
BASELINES: dict[str, dict[str, Any]] = {
    "bn-32-32-64-64": {
        "filters_0": 32,
        "convs_0": 2,
        "block_dropout_0": 0.0,
        "filters_1": 64,
        "convs_1": 2,
        "block_dropout_1": 0.0,
        "batch_norm": True,
        "dense_units": 256,
        "head_dropout": 0.0,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": "none",
        "batch_size": 64,
    },
    "bn-32-64-dropout": {
        "filters_0": 32,
        "convs_0": 1,
        "block_dropout_0": 0.1,
        "filters_1": 64,
        "convs_1": 1,
        "block_dropout_1": 0.2,
        "batch_norm": True,
        "dense_units": 128,
        "head_dropout": 0.3,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": "cosine",
        "batch_size": 128,
    },
}


SPACE = Space("cnn_cpu", BASELINES, {"class_weight": "none"}, _suggest)
