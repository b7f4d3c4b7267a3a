"""A cosine learning-rate schedule fitted to the time that remains.

The final training of a budget run has a deadline, not a fixed epoch
count. `fitted_cosine` plans a number of training steps (batches) and sets
the learning rate before every compiled call (one batch, or several small
ones: tuner.training.models.steps_per_execution) to
base * (1 + cos(pi * progress)) / 2,
where progress moves from 0 to 1 by (1 - progress) / steps left: linear
while the plan holds, and continuous, never backwards, when it changes. So
the rate reaches zero exactly at the planned end, where training stops,
mid-epoch if that is where the time runs out: the deadline is used to the
call (a few hundred images), not to the last whole epoch.

The first plan rests on a predicted speed, and machines speed up and slow
down, so every quarter of an epoch the plan is re-fitted to the clock,
longer or shorter, at the median speed of the last three quarters (the
first quarter, which pays for tracing, counts only until a second is done).
A quarter, not an epoch: a plan re-fitted once an epoch rests its last
stretch on a whole epoch measured at its slowest, and ends early. The
median, not the slowest: one stalled quarter (a hiccup of the machine, a
long garbage collection) would cut the plan, and the cosine's progress,
which never goes back, would keep the cut (benchmarks/journal.md, "Fifth
step" and "Sixth step"). It never plans more than `max_epochs` epochs. If a
call ends past the deadline (the machine slowed down), training stops there.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from tuner.core import interrupt


def fitted_cosine(
    base_learning_rate: float,
    epochs: int,
    steps_per_epoch: int,
    deadline: float | None = None,
    max_epochs: int | None = None,
) -> Any:
    """A Keras callback: cosine to zero over `epochs` epochs, re-fitted to end by `deadline` (time.time()).

    Train with `fit(epochs=max_epochs)` (at least `epochs`): the callback stops the training at its plan's end.
    """
    import keras

    most = max(epochs, max_epochs or epochs) * steps_per_epoch

    class FittedCosine(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.planned_steps = epochs * steps_per_epoch
            self.steps_done = 0
            self.progress = 0.0  # of the cosine, 0 to 1
            self.refit_every = max(1, steps_per_epoch // 4)
            self.window_started = 0.0
            self.window_steps_at_start = 0
            self.step_seconds: list[float] = []  # per window of `refit_every` steps: its seconds per step
            self.stopped_mid_epoch = False
            self.call_first_step = 0

        @property
        def planned_epochs(self) -> float:
            return self.planned_steps / steps_per_epoch

        def learning_rate_now(self) -> float:
            return base_learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, self.progress)))

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.window_started, self.window_steps_at_start = time.time(), 0

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.model.optimizer.learning_rate.assign(self.learning_rate_now())
            self.call_first_step = batch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            # One compiled call may run several steps (steps_per_execution), the last call of an epoch
            # fewer than the rest: Keras passes the first and last step's index, the last one unclipped.
            for _ in range(min(batch, steps_per_epoch - 1) - self.call_first_step + 1):
                self.progress += (1.0 - self.progress) / max(1, self.planned_steps - self.steps_done)
                self.steps_done += 1
            interrupt.check()
            now = time.time()
            steps = self.steps_done - self.window_steps_at_start
            if deadline is not None and steps >= self.refit_every:
                self.step_seconds.append((now - self.window_started) / steps)  # epoch ends included
                self.window_started, self.window_steps_at_start = now, self.steps_done
                self._refit(now)
            if self.steps_done >= self.planned_steps or (deadline is not None and now >= deadline):
                self.stopped_mid_epoch = self.steps_done % steps_per_epoch != 0
                self.model.stop_training = True  # the plan's end, or a slower machine than planned: stop on time

        def _refit(self, now: float) -> None:
            assert deadline is not None
            steady = self.step_seconds[1:] or self.step_seconds
            typical = statistics.median(steady[-3:])  # one stalled window does not cut the plan
            affordable = self.steps_done + int(max(0.0, deadline - now) // typical)
            self.planned_steps = max(self.steps_done, min(most, affordable))

    return FittedCosine()
