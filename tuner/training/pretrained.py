"""Pretrained starts (seed 002): read the conv layers `tuner pretrain` wrote and start a model from them.

A pretraining folder holds the conv layers' weights (`conv_weights.npz`) and
their architecture (`architecture.json`), written by tuner.training.pretrain.
A study with `pretrained = FOLDER` keeps that conv architecture, loads those
weights into every trial, and tunes the rest, including whether the loaded
layers are fine-tuned or frozen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.spec import ConvBlock
from tuner.core.traits import PretrainedConv

WEIGHTS_FILE = "conv_weights.npz"
ARCHITECTURE_FILE = "architecture.json"
CONV_SETTINGS = ("padding", "activation", "kernel_initializer", "batch_norm", "conv_l2", "pool_size", "pool_strides")


def conv_layers(model: Any) -> list[Any]:
    """The layers a pretrained start carries over: convolutions and their batch norms."""
    return [layer for layer in model.layers if layer.name.startswith("block") and layer.weights]


def read_architecture(folder: str | Path, input_shape: tuple[int, int, int]) -> PretrainedConv:
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
        conv = PretrainedConv(
            path=str(folder),
            blocks=tuple(ConvBlock(**block) for block in architecture["blocks"]),
            input_channels=channels,
            **{name: architecture[name] for name in CONV_SETTINGS},
        )
    except (ValueError, KeyError, TypeError) as error:
        raise TunerError(f"{path} is not a pretrained architecture ({error}); run 'tuner pretrain' again") from None
    if channels != input_shape[-1]:
        fix = 'color_mode = "grayscale"' if channels == 1 else 'color_mode = "rgb"'
        raise TunerError(
            f"pretrained weights in {folder} expect {channels}-channel images but this data set has "
            f"{input_shape[-1]}; set {fix} or pretrain on images with {input_shape[-1]} channel(s)"
        )
    return conv


def start_from(model: Any, folder: str, freeze: bool) -> str:
    """Load the saved conv weights into `model`; freeze them if asked. Returns how the model starts."""
    try:
        with np.load(Path(folder) / WEIGHTS_FILE) as archive:
            saved = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise TunerError(f"cannot read {Path(folder) / WEIGHTS_FILE} ({error}); run 'tuner pretrain' again") from None
    for layer in conv_layers(model):
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
