"""A cosine learning-rate schedule fitted to the time that remains.

The final training of a budget run has a deadline, not a fixed epoch
count. `fitted_cosine` plans a number of training steps (batches) and sets
the learning rate before every batch to base * (1 + cos(pi * progress)) / 2,
where progress moves from 0 to 1 by (1 - progress) / steps left: linear
while the plan holds, and continuous, never backwards, when it changes. So
the rate reaches zero exactly at the planned end, where training stops,
mid-epoch if that is where the time runs out: the deadline is used to the
batch, not to the last whole epoch. After each epoch the plan is re-fitted
to the clock at the speed just measured (the first epoch, which pays for
tracing, counts only until a second is done), longer or shorter: the first
plan rests on a predicted speed, and machines speed up and slow down. It never plans more than `max_epochs` epochs. If
a batch ends past the deadline (the machine slowed down mid-epoch), training
stops there.
"""

from __future__ import annotations

import math
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
            self.epoch_started = 0.0
            self.epoch_steps_at_start = 0
            self.step_seconds: list[float] = []  # per epoch: its seconds per step
            self.stopped_mid_epoch = False

        @property
        def planned_epochs(self) -> float:
            return self.planned_steps / steps_per_epoch

        def learning_rate_now(self) -> float:
            return base_learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, self.progress)))

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.epoch_started, self.epoch_steps_at_start = time.time(), 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_steps_at_start = self.steps_done

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.model.optimizer.learning_rate.assign(self.learning_rate_now())
            self.progress += (1.0 - self.progress) / max(1, self.planned_steps - self.steps_done)
            self.steps_done += 1

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()
            if self.steps_done % steps_per_epoch == 0:
                return  # an epoch's end: on_epoch_end re-fits the plan first
            if self.steps_done >= self.planned_steps or (deadline is not None and time.time() >= deadline):
                self.stopped_mid_epoch = True  # the plan's end, or a slower machine than planned: stop on time
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            steps, now = self.steps_done - self.epoch_steps_at_start, time.time()
            if steps:  # from the last epoch's end: what happens between epochs counts too
                self.step_seconds.append((now - self.epoch_started) / steps)
            self.epoch_started = now
            if deadline is not None and self.step_seconds and not self.model.stop_training:
                self._refit()
            if self.steps_done >= self.planned_steps or (deadline is not None and time.time() >= deadline):
                self.model.stop_training = True

        def _refit(self) -> None:
            assert deadline is not None
            steady = self.step_seconds[1:] or self.step_seconds
            typical = max(steady[-2:])  # the slower of the last two epochs: a margin against jitter
            affordable = self.steps_done + int(max(0.0, deadline - time.time()) // typical)
            self.planned_steps = max(self.steps_done, min(most, affordable))

    return FittedCosine()
