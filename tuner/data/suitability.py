"""What the data admits: which augmentations make sense, and whether its classes are unbalanced.

Flipping a "2" or a shoe upside down makes a different picture, and an 8x8
digit has no pixels to spare; seed 004's class weights only matter when the
classes are unbalanced. The search turns these facts into the space's traits.

The built-in data sets' flips are known. For other data (an image folder,
an .npz) a mirror is tried: a linear classifier trained on part of a sample
of the training split scores the rest as it is and mirrored, and a flip is
admitted where the mirrored images keep at least MIRROR_KEPT_SKILL of its
skill above chance (a mirrored shirt is still a shirt; a mirrored 2 is no 2).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from tuner.core.spec import AUGMENTATION_KINDS
from tuner.data.dataset import DataSet
from tuner.data.streaming import is_streamed

MIN_SIDE = 16  # below this many pixels a side, augmentation only destroys information
DIGIT_DATASETS = ("mnist", "digits")  # mirror images of digits are not digits
UPRIGHT_DATASETS = ("fashion",)  # clothes photographed upright: a left-right flip is fine, upside down is not
UNBALANCED_RATIO = 1.2  # largest / smallest class count above which class weights are tuned
FLIPS = {"horizontal": 2, "vertical": 1}  # each flip's image axis in a (count, height, width, channels) batch
# Chosen on the suite's training splits (benchmarks/journal.md, "Mirrors, and batch-norm momentum"): clothes keep 0.59-0.66
# of the skill under a left-right mirror, digits 0.28-0.39, and every upside-down mirror 0.12-0.32.
MIRROR_KEPT_SKILL = 0.5
MIRROR_SAMPLE = 3000  # images read for the mirror test
MIRROR_SIDE = 16  # the mirror test's classifier sees images averaged down to about this side, in grey


def applicable_augmentations(
    name: str,
    input_shape: Sequence[int],
    requested: str | list[str] = "auto",
    label_keeping_flips: Callable[[], tuple[str, ...]] = lambda: tuple(FLIPS),
) -> tuple[str, ...]:
    """The augmentation kinds that make sense for data set `name` at this image size.

    `requested` is the study's `augmentation` setting: "auto", "off", or a
    list of kinds (still limited by the image size). `label_keeping_flips`
    says which flips keep labels on data the project does not know
    (`mirror_keeping_flips` on its images); it is called only then.
    """
    if requested == "off" or min(input_shape[:2]) < MIN_SIDE:
        return ()
    if requested != "auto":
        return tuple(kind for kind in AUGMENTATION_KINDS if kind in requested)
    if name in DIGIT_DATASETS:
        return ("rotation", "translation", "zoom")
    if name in UPRIGHT_DATASETS:
        return ("horizontal", "rotation", "translation", "zoom")
    return with_flips(AUGMENTATION_KINDS, label_keeping_flips())


def with_flips(kinds: Sequence[str], flips: Collection[object]) -> tuple[str, ...]:
    """Augmentation `kinds` with their flips replaced by the flip kinds in `flips` (other values ignored), in
    AUGMENTATION_KINDS' order."""
    return tuple(kind for kind in AUGMENTATION_KINDS if (kind in flips if kind in FLIPS else kind in kinds))


def _grey_and_small(images: np.ndarray) -> np.ndarray:
    """(count, features): images in grey, averaged over square cells down to about MIRROR_SIDE a side."""
    grey = np.asarray(images, dtype=np.float32).mean(axis=-1)
    cell = max(1, min(grey.shape[1:]) // MIRROR_SIDE)
    height, width = grey.shape[1] // cell * cell, grey.shape[2] // cell * cell
    cells = grey[:, :height, :width].reshape(len(grey), height // cell, cell, width // cell, cell).mean(axis=(2, 4))
    return cells.reshape(len(grey), -1)


def mirror_kept_skill(images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Per flip, the share of a linear classifier's skill above chance that mirrored held-out images keep.

    1.0: the mirror changes nothing the classifier sees; 0.0 or below: mirrored
    images are recognised no better than chance.
    """
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import train_test_split

    counts = class_counts(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    x_fit, x_held, y_fit, y_held = train_test_split(images, labels, test_size=0.3, stratify=stratify, random_state=seed)
    classifier = RidgeClassifier(alpha=10.0).fit(_grey_and_small(x_fit), y_fit)
    chance = class_counts(y_held).max() / len(y_held)
    skill = classifier.score(_grey_and_small(x_held), y_held) - chance
    if skill <= 0:
        return dict.fromkeys(FLIPS, 0.0)
    return {
        flip: (classifier.score(_grey_and_small(np.flip(x_held, axis=axis)), y_held) - chance) / skill
        for flip, axis in FLIPS.items()
    }


def mirror_sample(dataset: DataSet) -> tuple[np.ndarray, np.ndarray]:
    """The mirror test's images and labels: a seeded sample of up to MIRROR_SAMPLE training images."""
    chosen = np.sort(np.random.default_rng(0).permutation(len(dataset.y_train))[:MIRROR_SAMPLE])
    images = dataset.x_train.read(chosen) if is_streamed(dataset.x_train) else np.asarray(dataset.x_train[chosen])
    return images, dataset.y_train[chosen]


def admitted_flips(kept_skill: dict[str, float]) -> tuple[str, ...]:
    """The flips whose mirror keeps at least MIRROR_KEPT_SKILL of the skill (`mirror_kept_skill`)."""
    return tuple(flip for flip in FLIPS if kept_skill[flip] >= MIRROR_KEPT_SKILL)


def mirror_keeping_flips(dataset: DataSet) -> tuple[str, ...]:
    """The flips admitted on `dataset`'s mirror sample."""
    return admitted_flips(mirror_kept_skill(*mirror_sample(dataset)))


def class_counts(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Images per class index."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels, minlength=num_classes or int(labels.max()) + 1)


def is_unbalanced(labels: np.ndarray) -> bool:
    """Largest over smallest (present) class count above UNBALANCED_RATIO."""
    counts = class_counts(labels)
    counts = counts[counts > 0]
    return bool(counts.max() / counts.min() > UNBALANCED_RATIO)
