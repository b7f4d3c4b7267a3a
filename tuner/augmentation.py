"""Augmentation as Keras preprocessing layers at the model's input.

Keras' random preprocessing layers change their input only when called with
`training=True`: `fit` trains through them, while `evaluate` and `predict`
(validation folds, the test split, exported models) pass images unchanged.
So augmentation can never leak into validation or test figures.

Not every change suits every data set: flipping a "2" or a shoe upside down
makes a different picture, and an 8x8 digit has no pixels to spare.
`applicable` says which changes a data set admits; the space tunes only those.
"""

from __future__ import annotations

from tuner.spec import Augmentation

KINDS = ("horizontal", "vertical", "rotation", "translation", "zoom")
MIN_SIDE = 16  # below this many pixels a side, augmentation only destroys information
DIGIT_DATASETS = ("mnist", "digits")  # mirror images of digits are not digits
UPRIGHT_DATASETS = ("fashion",)  # clothes photographed upright: a left-right flip is fine, upside down is not


def applicable(name: str, input_shape, requested="auto") -> tuple[str, ...]:
    """The augmentation kinds that make sense for this data set.

    `requested` is the study's `augmentation` setting: "auto", "off", or a
    list of kinds (still limited by the image size).
    """
    if requested == "off" or requested is False or min(input_shape[:2]) < MIN_SIDE:
        return ()
    if requested not in ("auto", True):
        return tuple(kind for kind in KINDS if kind in requested)
    if name in DIGIT_DATASETS or name.endswith(".npz"):
        return ("rotation", "translation", "zoom")
    if name in UPRIGHT_DATASETS:
        return ("horizontal", "rotation", "translation", "zoom")
    return KINDS


def flip_choices(kinds) -> list[str]:
    """The flip modes allowed by `kinds`, "none" first."""
    choices = ["none"] + [kind for kind in ("horizontal", "vertical") if kind in kinds]
    if "horizontal" in kinds and "vertical" in kinds:
        choices.append("horizontal_and_vertical")
    return choices


def augmentation_layers(augmentation: Augmentation) -> list:
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
