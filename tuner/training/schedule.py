"""A cosine learning-rate schedule fitted to the time that remains.

The final training of a budget run has a deadline, not a fixed epoch
count. `fitted_cosine` plans `epochs` epochs, sets the learning rate before
every batch to base * (1 + cos(pi * done / planned)) / 2, so it reaches zero
exactly at the planned end, and after each epoch checks the clock: when the
epochs left no longer fit before the deadline at the speed just measured,
it shortens the plan (the cosine then finishes sooner) and stops at the
deadline's last whole epoch. If one epoch runs past the deadline (the
machine slowed down mid-epoch), training stops at the deadline's batch. A
faster machine is never given more epochs than planned.
"""

from __future__ import annotations

import math
import time
from typing import Any

from tuner.core import interrupt


def fitted_cosine(base_learning_rate: float, epochs: int, steps_per_epoch: int, deadline: float | None = None) -> Any:
    """A Keras callback: cosine to zero over `epochs` epochs, shortened to end by `deadline` (time.time())."""
    import keras

    class FittedCosine(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.planned_epochs = epochs
            self.steps_done = 0
            self.epoch_started = 0.0
            self.epoch_seconds: list[float] = []
            self.shortened_to: int | None = None
            self.stopped_mid_epoch = False

        def learning_rate_now(self) -> float:
            progress = min(1.0, self.steps_done / max(1, self.planned_epochs * steps_per_epoch))
            return base_learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_started = time.time()

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.model.optimizer.learning_rate.assign(self.learning_rate_now())
            self.steps_done += 1

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()
            if deadline is not None and time.time() >= deadline:  # a slower machine than planned: stop on time
                self.stopped_mid_epoch = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_seconds.append(time.time() - self.epoch_started)
            finished = epoch + 1
            if finished >= self.planned_epochs:
                self.model.stop_training = True
                return
            if deadline is None:
                return
            typical = max(self.epoch_seconds[-2:])  # the slower of the last two: a margin against jitter
            affordable = int((deadline - time.time()) // typical) if typical > 0 else self.planned_epochs
            if finished + affordable < self.planned_epochs:
                self.planned_epochs = max(finished, finished + affordable)
                self.shortened_to = self.planned_epochs
                if affordable <= 0:
                    self.model.stop_training = True

    return FittedCosine()
