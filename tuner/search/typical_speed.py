"""A typical configuration's training speed: the median of random buildable draws of the space.

A trial count warns when its study would take hours, and a time budget
sizes its rungs; both need how fast a configuration of this space trains
on this machine before any has trained.
"""

from __future__ import annotations

import statistics

import optuna

from tuner.core.errors import TunerError
from tuner.core.speed import SpeedModel
from tuner.search.study import Prepared

TYPICAL_DRAWS = 200  # random draws of the space that estimate a typical configuration's speed


def typical_seconds_per_image(prepared: Prepared, speed: SpeedModel, seed: int = 0) -> float:
    """The median predicted training seconds per image of TYPICAL_DRAWS random buildable draws of the space."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    speeds = []
    dataset = prepared.dataset
    for _ in range(TYPICAL_DRAWS):
        trial = study.ask()
        spec = prepared.space.suggest(
            trial, dataset.input_shape, dataset.num_classes, prepared.config.epochs, prepared.objective.traits
        )
        if not spec.model.problems():
            speeds.append(speed.train_seconds_per_image(spec))
        study.tell(trial, 0.0)
    if not speeds:
        raise TunerError(
            f"no draw of the {prepared.space.name!r} space fits images of {dataset.input_shape}; choose another space"
        )
    return statistics.median(speeds)
