"""How fast training really runs: seconds per training image, with validation and tracing measured apart.

A fold's wall time mixes three costs: tracing or compiling the model (the
first epoch's first batches), training, and validation. Planning a time
budget needs training alone, so `TrainingClock` times each epoch's training
part (from the epoch's start until validation begins) and leaves out the
first epoch when there are later ones.
"""

from __future__ import annotations

import time
from typing import Any


def training_clock() -> Any:
    """A Keras callback that measures training-only seconds per epoch (see `TrainingClock`)."""
    import keras

    class TrainingClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []  # training part of each epoch
            self.validation_seconds: list[float] = []
            self._started = 0.0
            self._validating_since: float | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._started = time.perf_counter()
            self._validating_since = None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self._started and self._validating_since is None:
                self._validating_since = time.perf_counter()
                self.epoch_seconds.append(self._validating_since - self._started)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            if self._validating_since is None:  # no validation this epoch
                self.epoch_seconds.append(now - self._started)
            else:
                self.validation_seconds.append(now - self._validating_since)
            self._started = 0.0

        def steady_epoch_seconds(self) -> float | None:
            """Training seconds of a typical epoch: the mean after the first (tracing) one, if there are later ones."""
            steady = self.epoch_seconds[1:] or self.epoch_seconds
            return sum(steady) / len(steady) if steady else None

    return TrainingClock()
