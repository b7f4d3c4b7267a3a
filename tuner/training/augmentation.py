"""Augmentation as Keras preprocessing layers at the model's input.

Keras' random preprocessing layers change their input only when called with
`training=True`: `fit` trains through them, while `evaluate` and `predict`
(validation folds, the test split, exported models) pass images unchanged.
So augmentation can never leak into validation or test figures.

Which changes suit which data is the data's business (tuner.data.suitability).
"""

from __future__ import annotations

from typing import Any

from tuner.core.spec import Augmentation


def augmentation_layers(augmentation: Augmentation) -> list[Any]:
    """The Keras layers for `augmentation`, in a fixed order (empty when all is off)."""
    from keras import layers

    block = []
    if augmentation.flip != "none":
        block.append(layers.RandomFlip(augmentation.flip, name="augment_flip"))
    if augmentation.rotation > 0:
        block.append(layers.RandomRotation(augmentation.rotation, fill_mode="constant", name="augment_rotation"))
    if augmentation.translation > 0:
        block.append(
            layers.RandomTranslation(
                augmentation.translation, augmentation.translation, fill_mode="constant", name="augment_translation"
            )
        )
    if augmentation.zoom > 0:
        block.append(layers.RandomZoom(augmentation.zoom, fill_mode="constant", name="augment_zoom"))
    return block
