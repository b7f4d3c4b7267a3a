"""A wall-clock budget, planned: when the search ends, which fidelities it judges at, how long the final model trains.

The budget runs from the command's start to the exported model's card. After
loading the data and calibrating the machine's speed (tuner.core.speed), what
is left goes to

- the search (the policy's `search_share` of it): successive halving over data size,
  asynchronous (ASHA, tuner.budget.rungs). Every rung is a miniature of the
  final training: a configuration trains there for the epochs its own final
  training would get (what the final phase's seconds buy at its speed, see
  `matched_epochs`), with the same cosine to zero, on fewer images. So a slow
  configuration is judged by what it reaches in the few epochs it could
  afford, a fast one by its many, and every configuration costs a rung about
  the same time. Rung 0 trains on a small stratified part of the training
  images; each rung up trains on `eta` times more (and costs `eta` times
  more); the best 1/eta of each rung are judged again one rung up. All rungs
  validate once, at their end, on a fixed hold-out (fold 0 of the study's K
  folds): the whole hold-out, or as many images as the rung trains on.
  The number of rungs grows with the budget: rung 0 must be worth at least
  `min_rung_seconds` (and four tracings) of a typical model's training;
- the final training (the rest): the winner, on the whole training split,
  with a cosine learning rate fitted to the time left; more models for an
  averaged ensemble only if time is left after `max_final_epochs`;
- the export: one test evaluation, the .keras file, the card (EXPORT_RESERVE).

Everything here is arithmetic on seconds: no training, no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.speed import SpeedModel

MATCHED = 0  # a rung's `epochs` when each configuration trains the epochs of its own final training
ARMS = {  # which configurations a budget search judges; benchmarks compare them (docs/benchmarks.md)
    "portfolio+search": "the space's portfolio starts, the seed baselines, then the sampler's draws",
    "portfolio": "the space's portfolio starts alone (and their promotions)",
    "search": "the seed baselines and the sampler's draws, no portfolio starts",
    "none": "the space's first portfolio start that fits, judged once at rung 0, then trained on what is left",
}
MAX_MEMBERS = 5  # the final phase trains at most this many models (the winner, then ensemble members)
PLAN_ATTR = "budget_plan"  # the study user attribute that keeps the plan, for every worker to follow
SPEED_ATTR = "speed_model"  # ... and the calibrated speed


@dataclass(frozen=True)
class PlanPolicy:
    """The constants a plan is made with: one value, passed in and stored with the plan, never patched."""

    eta: int = 3  # each rung costs eta x the one below; the best 1/eta are promoted
    search_share: float = 0.55  # of the time left after calibration and the export reserve
    min_rung_seconds: float = 5.0  # a typical model's rung-0 training is worth at least this
    max_rungs: int = 5
    min_validation_images: int = 2000  # the cheapest rungs validate on at least this many hold-out images
    min_final_epochs: int = 3  # a configuration whose final training cannot fit this many epochs is not searched
    max_final_epochs: int = 40  # beyond this the final model gains little; spare time goes to ensemble members
    # an ensemble member trains at least this share of the winner's epochs, or the ensemble stops before it: on a
    # rehearsal's hold-out a member with 11 epochs beside two with 40 pulled the average below the winner (docs/budget.md)
    min_member_epoch_share: float = 0.5
    speed_margin: float = 1.05  # final trainings and their rung miniatures plan with a configuration's speed, 5% slower
    min_images_per_class: int = 30  # the smallest rung sees at least this many images of each class
    arm: str = "portfolio+search"  # which configurations the search judges (ARMS); the search ends when they are judged
    # what the default arm judges instead, in one process, when its plan has a single rung on part of the pool and the
    # first start's final training would stop short of max_final_epochs ("" keeps the default arm): such a rung ranks
    # at a cheap fidelity only, and on the rehearsals' hold-outs the first start trained for the whole budget beat it
    # (docs/budget.md)
    single_rung_arm: str = "none"

    def __post_init__(self) -> None:
        for arm in (self.arm, self.single_rung_arm or self.arm):
            if arm not in ARMS:
                raise TunerError(f"unknown search arm {arm!r}; choose one of {', '.join(ARMS)}")

    @property
    def judges_starts(self) -> bool:
        """Whether the search judges the space's portfolio starts."""
        return self.arm != "search"

    @property
    def draws(self) -> bool:
        """Whether the search judges the seed baselines and the sampler's draws."""
        return self.arm in ("portfolio+search", "search")

    def final_epochs(self, seconds: float, images: int, seconds_per_image: float) -> int:
        """Whole epochs of `images` that fit in `seconds`, at most `max_final_epochs` (0 when not even one fits)."""
        if seconds_per_image <= 0 or images <= 0:
            return self.max_final_epochs
        return max(0, min(self.max_final_epochs, math.floor(seconds / (images * seconds_per_image))))

    def least_member_epochs(self, winner_epochs: int) -> int:
        """The fewest epochs an ensemble member may train: `min_final_epochs`, and a share of the winner's epochs."""
        return max(self.min_final_epochs, math.ceil(self.min_member_epoch_share * winner_epochs))

    def matched_epochs(self, final_seconds: float, images: int, seconds_per_image: float) -> int:
        """The epochs a configuration's final training gets: what the final phase fits, `min_final_epochs` at least."""
        return max(self.min_final_epochs, self.final_epochs(final_seconds, images, seconds_per_image))


DEFAULT_POLICY = PlanPolicy()


def slowest_judged(final_seconds: float, train_images: int, policy: PlanPolicy = DEFAULT_POLICY) -> float:
    """Seconds per image at which `min_final_epochs` on every training image just fit the final phase."""
    return max(0.0, final_seconds) / max(1, train_images * policy.min_final_epochs)


def final_phase_seconds(budget: float, started: float, now: float, policy: PlanPolicy = DEFAULT_POLICY) -> float:
    """The final phase's seconds of a budget that started at `started`, planned at `now` (as `make_plan` splits it)."""
    left = budget - (now - started) - export_reserve(budget)
    return max(0.0, left - max(0.0, left * policy.search_share))


def final_seconds_per_image(stored: TrialRecord, speed: SpeedModel, policy: PlanPolicy = DEFAULT_POLICY) -> float:
    """The speed a judged configuration's final training is planned with: as measured at its rung (else as the
    speed model predicts), with the policy's margin."""
    assert stored.spec is not None, "a budget trial stores its spec"
    return (stored.train_seconds_per_image or speed.train_seconds_per_image(stored.spec)) * policy.speed_margin


def final_model_seconds(
    seconds_per_image: float, train_images: int, trace_seconds: float, budget: float, policy: PlanPolicy = DEFAULT_POLICY
) -> float:
    """The most one final model takes at `seconds_per_image` (final_seconds_per_image): `max_final_epochs` on every
    training image, its tracing, and its export (as much as the run's: test, file, plots, card)."""
    return trace_seconds + policy.max_final_epochs * train_images * seconds_per_image + export_reserve(budget)


def export_reserve(budget: float) -> float:
    """Seconds kept for the test evaluation, the model file, plots and card."""
    return 10.0 + 0.005 * budget


@dataclass(frozen=True)
class Rung:
    """One fidelity: train on `images` images for `epochs` epochs, validate once on `validation_images`.

    `epochs` is MATCHED (0) in the plans of this version: each configuration
    trains for `matched_epochs` of its final training. Plans stored by
    earlier versions name a fixed count, and studies resumed from them keep it.
    """

    index: int
    images: int
    epochs: int
    validation_images: int

    def epochs_for(self, matched: int) -> int:
        """The epochs a configuration trains here, `matched` being those its final training would get."""
        return matched if self.epochs == MATCHED else self.epochs


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
    matched_seconds: float = 0.0  # the final phase's seconds that rung epochs are matched to (kept when resumed)
    policy: PlanPolicy = DEFAULT_POLICY  # the constants it was made with (plans stored without one: the default)

    @property
    def top(self) -> Rung:
        return self.rungs[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored on the study so that workers follow the same plan."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetPlan:
        """The plan `to_dict` wrote."""
        policy = PlanPolicy(**data["policy"]) if data.get("policy") else DEFAULT_POLICY
        return cls(**{**data, "rungs": tuple(Rung(**rung) for rung in data["rungs"]), "policy": policy})

    def describe(self, start_epochs: Mapping[str, int] | None = None) -> list[str]:
        """What the plan is, for the log and the study's note.

        `start_epochs`: the epochs the space's portfolio starts train at rung 0 (BudgetSearch.start_epochs), the
        figures the run then uses; without them the rungs say only that the epochs are matched.
        """
        search = self.search_deadline - self.started
        final = self.final_deadline - self.search_deadline
        lines = [
            f"budget {self.budget:.0f}s: search until {search:.0f}s, final training until "
            f"{self.final_deadline - self.started:.0f}s ({final:.0f}s), export by {self.budget:.0f}s",
            f"  judges {ARMS[self.policy.arm]}; configurations slower than "
            f"{self.slowest_judged * 1000:.3f} ms per image are rejected unjudged "
            f"({self.policy.min_final_epochs} final epochs would not fit)",
        ]
        matched = "the epochs of its final training"
        if start_epochs:
            low, high = min(start_epochs.values()), max(start_epochs.values())
            span = f"{low}" if low == high else f"{low} to {high}"
            matched += f" ({span} for the space's starts)"
        for rung in self.rungs:
            epochs = matched if rung.epochs == MATCHED else f"{rung.epochs} epochs"
            lines.append(f"  rung {rung.index}: {rung.images} images x {epochs}, validated on {rung.validation_images}")
        if start_epochs:
            lines.append("  starts' epochs: " + ", ".join(f"{name} {epochs}" for name, epochs in start_epochs.items()))
        return lines

    @property
    def slowest_judged(self) -> float:
        """The slowest speed (seconds per training image) a configuration may have to be judged."""
        return slowest_judged(self.final_deadline - self.search_deadline, self.train_images, self.policy)

    def epochs_for(self, rung: Rung, seconds_per_image: float) -> int:
        """The epochs a configuration training at `seconds_per_image` trains at `rung`."""
        return rung.epochs_for(self.policy.matched_epochs(self.matched_seconds, self.train_images, seconds_per_image))


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
    policy: PlanPolicy = DEFAULT_POLICY,
) -> BudgetPlan:
    """Plan the rest of a budget that started at `started`, as of `now`, with `policy`'s constants.

    `seconds_per_image` is a typical configuration's training speed (from
    the calibration), `eval_factor` the cost of validating an image relative
    to training one, `trace_seconds` the one-off cost of each new model.
    """
    eta = policy.eta
    left = budget - (now - started) - export_reserve(budget)
    search_seconds = max(0.0, left * policy.search_share)
    search_deadline = now + search_seconds
    final_deadline = started + budget - export_reserve(budget)
    final_seconds = max(0.0, final_deadline - search_deadline)
    pool = max(1, train_images - validation_images)
    min_images = min(pool, policy.min_images_per_class * num_classes)
    # a typical configuration's seconds per rung image: its final training's epochs, then one validation
    per_image = seconds_per_image * (policy.matched_epochs(final_seconds, train_images, seconds_per_image) + eval_factor)
    widest = trace_seconds + pool * per_image  # the most a rung may cost: a miniature on every search image
    floor = max(policy.min_rung_seconds, 4 * trace_seconds, trace_seconds + min_images * per_image)
    count = 1
    for candidate in range(policy.max_rungs, 0, -1):  # the most rungs whose cheapest is still worth its tracing
        if min(widest, search_seconds * workers / (candidate * eta)) / eta ** (candidate - 1) >= floor:
            count = candidate
            break
    top_seconds = min(widest, search_seconds * workers / (count * eta))
    rungs: list[Rung] = []
    for index in range(count):
        seconds = top_seconds / eta ** (count - 1 - index)
        images = int(min(pool, max(min_images, (seconds - trace_seconds) / per_image)))
        if rungs and images <= rungs[-1].images:
            break  # the pool is used up: a rung on the same images would judge nothing new
        checked = min(validation_images, max(policy.min_validation_images, images))
        rungs.append(Rung(index, images, MATCHED, checked))
    return BudgetPlan(
        budget,
        started,
        search_deadline,
        final_deadline,
        tuple(rungs),
        train_images,
        pool,
        seconds_per_image,
        final_seconds,
        policy,
    )
