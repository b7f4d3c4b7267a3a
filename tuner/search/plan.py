"""A wall-clock budget, planned: when the search ends, which fidelities it judges at, how long the final model trains.

The budget runs from the command's start to the exported model's card. After
loading the data and calibrating the machine's speed (tuner.core.speed), what
is left goes to

- the search (SEARCH_SHARE of it): successive halving over data size and
  epochs, asynchronous (ASHA, tuner.search.rungs). Rung 0 trains on a small
  stratified part of the training images for a few epochs; each rung up costs
  ETA times more per configuration (first more images, then, once every
  training image is used, more epochs); the best 1/ETA of each rung are
  judged again one rung up. All rungs validate once, at their end, on a fixed
  hold-out (fold 0 of the study's K folds), a part of it at the cheap rungs.
  The number of rungs grows with the budget: rung 0 must be worth at least
  MIN_RUNG_SECONDS (and four tracings) of a typical model's training, and no
  rung trains more than MAX_RUNG_EPOCHS epochs;
- the final training (the rest): the winner, on the whole training split,
  with a cosine learning rate fitted to the time left; more models for an
  averaged ensemble only if time is left after MAX_FINAL_EPOCHS;
- the export: one test evaluation, the .keras file, the card (EXPORT_RESERVE).

Everything here is arithmetic on seconds: no training, no Optuna.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ETA = 3  # each rung costs ETA x the one below; the best 1/ETA are promoted
SEARCH_SHARE = 0.55  # of the time left after calibration and the export reserve
MIN_RUNG_SECONDS = 5.0  # a typical model's rung-0 training is worth at least this
MAX_RUNG_EPOCHS = 20  # the top rung trains at most this many epochs on every search image
MAX_RUNGS = 5
MIN_EPOCHS = 2  # every rung trains at least this many epochs
MIN_FINAL_EPOCHS = 3  # a configuration whose final training cannot fit this many epochs is not searched
MAX_FINAL_EPOCHS = 40  # beyond this the final model gains little; spare time goes to ensemble members
MIN_IMAGES_PER_CLASS = 30  # the smallest rung sees at least this many images of each class


def export_reserve(budget: float) -> float:
    """Seconds kept for the test evaluation, the model file, plots and card."""
    return 10.0 + 0.01 * budget


@dataclass(frozen=True)
class Rung:
    """One fidelity: train on `images` images for `epochs` epochs, validate once on `validation_images`."""

    index: int
    images: int
    epochs: int
    validation_images: int


@dataclass(frozen=True)
class BudgetPlan:
    """Deadlines (seconds since the epoch) and fidelities of one budget run."""

    budget: float  # seconds, from the command's start to the card
    started: float  # the command's start
    search_deadline: float  # no search job may end later
    final_deadline: float  # the final training(s) end by then; the export follows
    rungs: tuple[Rung, ...]
    train_images: int  # the whole training split: what the final model trains on
    pool_images: int  # training images the search may use (the split minus the hold-out)
    reference_seconds_per_image: float  # a typical configuration's training speed, when planned

    @property
    def top(self) -> Rung:
        return self.rungs[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored on the study so that workers follow the same plan."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetPlan:
        """The plan `to_dict` wrote."""
        return cls(**{**data, "rungs": tuple(Rung(**rung) for rung in data["rungs"])})

    def describe(self) -> list[str]:
        """What the plan is, for the log and the study's note."""
        search = self.search_deadline - self.started
        final = self.final_deadline - self.search_deadline
        lines = [
            f"budget {self.budget:.0f}s: search until {search:.0f}s, final training until "
            f"{self.final_deadline - self.started:.0f}s ({final:.0f}s), export by {self.budget:.0f}s"
        ]
        for rung in self.rungs:
            lines.append(
                f"  rung {rung.index}: {rung.images} images x {rung.epochs} epochs, validated on {rung.validation_images}"
            )
        return lines


def _rung_fidelity(work: float, pool: int, min_images: int) -> tuple[int, int]:
    """(images, epochs) for `work` image-epochs: images grow first, then epochs, never below the minimums."""
    images = int(min(pool, max(min_images, work / MIN_EPOCHS)))
    epochs = max(MIN_EPOCHS, round(work / images))
    return images, epochs


def make_plan(
    *,
    budget: float,
    started: float,
    now: float,
    train_images: int,
    validation_images: int,
    num_classes: int,
    seconds_per_image: float,
    eval_factor: float,
    trace_seconds: float,
    workers: int = 1,
) -> BudgetPlan:
    """Plan the rest of a budget that started at `started`, as of `now`.

    `seconds_per_image` is a typical configuration's training speed (from
    the calibration), `eval_factor` the cost of validating an image relative
    to training one, `trace_seconds` the one-off cost of each new model.
    """
    left = budget - (now - started) - export_reserve(budget)
    search_seconds = max(0.0, left * SEARCH_SHARE)
    search_deadline = now + search_seconds
    final_deadline = started + budget - export_reserve(budget)
    pool = max(1, train_images - validation_images)
    min_images = min(pool, MIN_IMAGES_PER_CLASS * num_classes)
    widest = trace_seconds + pool * MAX_RUNG_EPOCHS * seconds_per_image  # the most a rung may cost
    floor = max(MIN_RUNG_SECONDS, 4 * trace_seconds)
    count = 1
    for candidate in range(MAX_RUNGS, 0, -1):  # the most rungs whose cheapest is still worth its tracing
        if min(widest, search_seconds * workers / (candidate * ETA)) / ETA ** (candidate - 1) >= floor:
            count = candidate
            break
    top_seconds = min(widest, search_seconds * workers / (count * ETA))
    rungs: list[Rung] = []
    for index in range(count):
        seconds = top_seconds / ETA ** (count - 1 - index)
        work = max(0.0, seconds - trace_seconds) / seconds_per_image  # image-epochs, before validation
        images, epochs = _rung_fidelity(work, pool, min_images)
        if rungs and (images, epochs) <= (rungs[-1].images, rungs[-1].epochs):
            images, epochs = rungs[-1].images, rungs[-1].epochs + 1  # each rung judges on more
        rungs.append(Rung(index, images, min(epochs, MAX_RUNG_EPOCHS), min(validation_images, max(1000, images // 2))))
    return BudgetPlan(budget, started, search_deadline, final_deadline, tuple(rungs), train_images, pool, seconds_per_image)


def final_epochs(seconds: float, images: int, seconds_per_image: float) -> int:
    """Whole epochs of `images` that fit in `seconds`, at most MAX_FINAL_EPOCHS (0 when not even one fits)."""
    if seconds_per_image <= 0 or images <= 0:
        return MAX_FINAL_EPOCHS
    return max(0, min(MAX_FINAL_EPOCHS, math.floor(seconds / (images * seconds_per_image))))
