"""`tuner pretrain` (seed 002): train conv layers on one data set for studies on another to start from.

It trains seed 002's model (two convolutions, one max-pool, two dense
layers, batch norm between each linear layer and its activation) and writes
the conv layers' weights and their architecture (tuner.training.pretrained
reads them back), each file crash-safely.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.files import remove_partials, replacing, write_text
from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.data.dataset import DataSet
from tuner.training.pretrained import ARCHITECTURE_FILE, CONV_SETTINGS, WEIGHTS_FILE, conv_layers
from tuner.training.train_once import train_once

VALIDATION_FRACTION = 0.1  # the last tenth of the training images, as Keras' validation_split takes it


def seed002_spec(input_shape: tuple[int, int, int], num_classes: int) -> ModelSpec:
    """Seed 002's pretraining model, with 'same' padding so that it fits any image size."""
    return ModelSpec(
        input_shape=input_shape,
        num_classes=num_classes,
        blocks=(ConvBlock(32, 3, pooling=None), ConvBlock(64, 3, pooling="max")),
        padding="same",
        activation="relu",
        kernel_initializer="he_uniform",
        batch_norm=True,
        dense_units=(128,),
    )


def pretrain(dataset: DataSet, out: str | Path, epochs: int = 5, batch_size: int = 128, seed: int = 0) -> dict[str, Any]:
    """Train seed 002's model on `dataset`'s training split and write its conv layers to `out`; returns the architecture."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TunerError(f"--out {out} is a file; give a folder for the weights")
    spec = seed002_spec(dataset.input_shape, dataset.num_classes)
    recipe = TrialSpec(spec, TrainSpec(optimizer="adam", learning_rate=1e-3, batch_size=batch_size, epochs=epochs))
    split = len(dataset.y_train) - int(len(dataset.y_train) * VALIDATION_FRACTION)
    trained = train_once(
        recipe,
        dataset.x_train[:split],
        dataset.y_train[:split],
        seed=seed,
        validation_data=(dataset.x_train[split:], dataset.y_train[split:]),
    )
    out.mkdir(parents=True, exist_ok=True)
    remove_partials(out)  # a killed pretrain's leftovers
    layers = conv_layers(trained.model)
    arrays: dict[str, Any] = {
        f"{layer.name}/{i}": np.asarray(w) for layer in layers for i, w in enumerate(layer.get_weights())
    }
    with replacing(out / WEIGHTS_FILE) as temporary:
        np.savez(temporary, **arrays)
    architecture = {
        "source": dataset.name,
        "input_shape": list(spec.input_shape),
        "blocks": [dataclasses.asdict(block) for block in spec.blocks],
        **{name: getattr(spec, name) for name in CONV_SETTINGS},
        "epochs": epochs,
        "train_accuracy": trained.history["accuracy"][-1],
        "val_accuracy": trained.history["val_accuracy"][-1],
        "layers": [layer.name for layer in layers],
    }
    write_text(out / ARCHITECTURE_FILE, json.dumps(architecture, indent=2) + "\n")
    return architecture
