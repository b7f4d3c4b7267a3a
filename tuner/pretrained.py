"""Pretrained starts (seed 002): train conv layers on one data set, start another from them.

`pretrain` trains seed 002's model (two convolutions, one max-pool, two dense
layers, batch norm between each linear layer and its activation) and writes
a folder with the conv layers' weights (`conv_weights.npz`) and their
architecture (`architecture.json`). A study with `pretrained = FOLDER` keeps
that conv architecture, loads those weights into every trial, and tunes the
rest, including whether the loaded layers are fine-tuned or frozen.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tuner.errors import TunerError
from tuner.spec import ConvBlock, ModelSpec, TrainSpec

WEIGHTS_FILE = "conv_weights.npz"
ARCHITECTURE_FILE = "architecture.json"
CONV_SETTINGS = ("padding", "activation", "kernel_initializer", "batch_norm", "conv_l2", "pool_size", "pool_strides")


def seed002_spec(input_shape, num_classes: int) -> ModelSpec:
    """Seed 002's pretraining model, with 'same' padding so that it fits any image size."""
    return ModelSpec(
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        blocks=(ConvBlock(32, 3, pooling=None), ConvBlock(64, 3, pooling="max")),
        padding="same",
        activation="relu",
        kernel_initializer="he_uniform",
        batch_norm=True,
        dense_units=(128,),
    )


def _conv_layers(model) -> list:
    """The layers a pretrained start carries over: convolutions and their batch norms."""
    return [layer for layer in model.layers if layer.name.startswith("block") and layer.weights]


def pretrain(dataset, out: str | Path, epochs: int = 5, batch_size: int = 128, seed: int = 0) -> dict:
    """Train seed 002's model on `dataset`'s training split and write its conv layers to `out`."""
    import keras

    from tuner import models

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TunerError(f"--out {out} is a file; give a folder for the weights")
    keras.utils.set_random_seed(seed)
    spec = seed002_spec(dataset.input_shape, dataset.num_classes)
    model = models.build_model(spec)
    train = TrainSpec(optimizer="adam", learning_rate=1e-3, batch_size=batch_size, epochs=epochs)
    models.compile_model(model, train, len(dataset.y_train))
    history = model.fit(
        dataset.x_train, dataset.y_train, validation_split=0.1, epochs=epochs, batch_size=batch_size, verbose=0
    ).history
    out.mkdir(parents=True, exist_ok=True)
    arrays = {f"{layer.name}/{i}": np.asarray(w) for layer in _conv_layers(model) for i, w in enumerate(layer.get_weights())}
    np.savez(out / WEIGHTS_FILE, **arrays)
    architecture = {
        "source": dataset.name,
        "input_shape": list(spec.input_shape),
        "blocks": [dataclasses.asdict(block) for block in spec.blocks],
        **{name: getattr(spec, name) for name in CONV_SETTINGS},
        "epochs": epochs,
        "train_accuracy": float(history["accuracy"][-1]),
        "val_accuracy": float(history["val_accuracy"][-1]),
        "layers": [layer.name for layer in _conv_layers(model)],
    }
    (out / ARCHITECTURE_FILE).write_text(json.dumps(architecture, indent=2) + "\n")
    keras.backend.clear_session()
    return architecture


def read_architecture(folder: str | Path, input_shape) -> dict:
    """The conv architecture saved in `folder`, checked against this data set's images."""
    folder = Path(folder).expanduser()
    path = folder / ARCHITECTURE_FILE
    if not path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise TunerError(
            f"pretrained = {folder}: no {ARCHITECTURE_FILE} and {WEIGHTS_FILE} there; "
            f"make them with 'tuner pretrain mnist --out {folder}'"
        )
    try:
        architecture = json.loads(path.read_text())
        channels = architecture["input_shape"][-1]
        [ConvBlock(**block) for block in architecture["blocks"]]
    except (ValueError, KeyError, TypeError) as error:
        raise TunerError(f"{path} is not a pretrained architecture ({error}); run 'tuner pretrain' again") from None
    if channels != input_shape[-1]:
        fix = 'color_mode = "grayscale"' if channels == 1 else 'color_mode = "rgb"'
        raise TunerError(
            f"pretrained weights in {folder} expect {channels}-channel images but this data set has "
            f"{input_shape[-1]}; set {fix} or pretrain on images with {input_shape[-1]} channel(s)"
        )
    return {**architecture, "path": str(folder)}


def conv_blocks(architecture: dict) -> tuple[ConvBlock, ...]:
    return tuple(ConvBlock(**block) for block in architecture["blocks"])


def start_from(model, folder: str, freeze: bool) -> str:
    """Load the saved conv weights into `model`; freeze them if asked. Returns how the model starts."""
    try:
        with np.load(Path(folder) / WEIGHTS_FILE) as archive:
            saved = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise TunerError(f"cannot read {Path(folder) / WEIGHTS_FILE} ({error}); run 'tuner pretrain' again") from None
    for layer in _conv_layers(model):
        weights = [saved.get(f"{layer.name}/{i}") for i in range(len(layer.weights))]
        expected = [tuple(w.shape) for w in layer.weights]
        found = [None if w is None else tuple(w.shape) for w in weights]
        if found != expected:
            raise TunerError(
                f"pretrained weights in {folder} do not fit layer {layer.name}: saved shapes {found}, "
                f"model needs {expected}; pretrain again for this architecture"
            )
        layer.set_weights(weights)
        if freeze:
            layer.trainable = False
    return f"pretrained:{folder} ({'frozen' if freeze else 'fine-tuned'})"
