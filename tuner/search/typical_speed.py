"""A typical configuration's training speed: the median of random buildable draws of the space.

A trial count warns when its study would take hours, and a time budget
sizes its rungs; both need how fast a configuration of this space trains
on this machine before any has trained. A budget counts only the
configurations it would judge: draws fast enough for its final phase, and
the space's portfolio starts that are.
"""

from __future__ import annotations

import math
import statistics

import optuna

from tuner.core.errors import TunerError
from tuner.core.speed import SpeedModel
from tuner.search.study import Prepared

TYPICAL_DRAWS = 200  # random draws of the space that estimate a typical configuration's speed


def typical_seconds_per_image(
    prepared: Prepared, speed: SpeedModel, seed: int = 0, slowest_judged: float = math.inf
) -> float:
    """The median predicted training seconds per image of the space's configurations that a run would judge.

    Those are the buildable draws among TYPICAL_DRAWS random ones, and the
    portfolio starts, that train at `slowest_judged` seconds per image or
    faster (a budget rejects slower ones unjudged); with no limit, the draws
    alone. When none is fast enough, the fastest buildable one stands in.
    """
    from tuner.search.objective import spec_for_params

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    speeds, refused = [], None
    dataset, space, epochs, traits = prepared.dataset, prepared.space, prepared.config.epochs, prepared.objective.traits
    for _ in range(getattr(space, "typical_draws", TYPICAL_DRAWS)):  # a space that builds Keras models draws fewer
        trial = study.ask()
        try:
            spec = space.suggest(trial, dataset.input_shape, dataset.num_classes, epochs, traits)
        except TunerError as error:  # this draw cannot be trained (a model function's model that does not fit)
            refused = refused or error
            study.tell(trial, 0.0)
            continue
        if not spec.model.problems():
            speeds.append(speed.train_seconds_per_image(spec))
        study.tell(trial, 0.0)
    if not speeds:
        if refused is not None:
            raise refused
        raise TunerError(f"no draw of the {space.name!r} space fits images of {dataset.input_shape}; choose another space")
    if math.isinf(slowest_judged):
        return statistics.median(speeds)
    for params in space.portfolio.values():
        start = spec_for_params(space, params, dataset, epochs, traits)
        if not start.model.problems():
            speeds.append(speed.train_seconds_per_image(start))
    judged = [s for s in speeds if s <= slowest_judged]
    return statistics.median(judged) if judged else min(speeds)
