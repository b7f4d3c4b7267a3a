"""Flip test-time augmentation: a model that averages its class probabilities over an image and its mirrors.

A model that trained on mirrored images (its augmentation's flip) scores an
image and its mirror alike well, so averaging the two is a cheap ensemble of
one model; a model that never saw a mirror can score it badly, so only the
flips a model trained with are averaged over. The wrapped model is built from Keras' own layers
only, so it saves, loads in safe mode and converts to every export format as
any model does: a mirror is a `Permute` that brings the flipped axis last, a
frozen `Dense` whose kernel is the anti-identity (it reverses that axis
exactly: each output is one input times 1), and the `Permute` back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuner.core.spec import Augmentation
from tuner.data.suitability import FLIPS

# the Permute that brings each flip's axis of a (height, width, channels) image last; it is its own inverse
_AXIS_LAST = {"horizontal": (1, 3, 2), "vertical": (3, 2, 1)}


def exported_flips(setting: str, augmentation: Augmentation) -> tuple[str, ...]:
    """The flips an exported model averages over: none when `setting` is "off", else those its training
    `augmentation` applied ("horizontal_and_vertical": both)."""
    return () if setting == "off" else tuple(flip for flip in FLIPS if flip in augmentation.flip)


def mirror_layer(flip: str, side: int, name: str) -> Any:
    """A function of a Keras tensor: the image mirrored along `flip` (its axis `side` pixels long)."""
    import keras
    import numpy as np

    reverse = keras.layers.Dense(side, use_bias=False, trainable=False, name=f"{name}_reverse")
    reverse.build((None, side))
    reverse.set_weights([np.eye(side, dtype="float32")[::-1]])
    order = _AXIS_LAST[flip]

    def mirrored(images: Any) -> Any:
        turned = keras.layers.Permute(order, name=f"{name}_turn")(images)
        return keras.layers.Permute(order, name=f"{name}_back")(reverse(turned))

    return mirrored


def mirror_averaged(model: Any, flips: Sequence[str]) -> Any:
    """`model` with its class probabilities averaged over the image and its mirrors along `flips` (none: `model`)."""
    if not flips:
        return model
    import keras

    unknown = [flip for flip in flips if flip not in FLIPS]
    if unknown:
        raise ValueError(f"unknown flip {unknown[0]!r}; choose from {', '.join(FLIPS)}")
    shape = tuple(model.input_shape[1:])
    inputs = keras.Input(shape=shape, name="image")
    outputs = [model(inputs)]
    for flip in flips:
        side = shape[FLIPS[flip] - 1]  # FLIPS counts the batch axis
        outputs.append(model(mirror_layer(flip, side, f"mirror_{flip}")(inputs)))
    averaged = keras.layers.Average(name="mirror_averaged")(outputs)
    return keras.Model(inputs, averaged, name=f"{model.name}_mirror_averaged")
