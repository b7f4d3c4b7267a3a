"""Latency of a model per image, by its own runtime on this machine: the median of timed calls after a warm-up.

A call runs one batch of real test images; the first `WARMUP_CALLS` are not
timed (graph tracing, kernel selection, memory allocation), then each of
`TIMED_CALLS` is timed alone with a monotonic wall clock, and the median
call divided by the batch size is the figure. The median, not the mean,
so that another process's burst on a shared machine moves it little.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

BATCH_SIZES = (1, 64)
WARMUP_CALLS = 2
TIMED_CALLS = 9


def batch_of(x: Any, size: int) -> np.ndarray:
    """The first `size` test images as float32 (repeated when the split has fewer)."""
    first = np.asarray(x[:size], dtype="float32")
    return first if len(first) == size else np.resize(first, (size, *first.shape[1:])).astype("float32")


def seconds_per_call(run: Callable[[np.ndarray], Any], batch: np.ndarray) -> float:
    """The median wall-clock seconds of `TIMED_CALLS` calls of `run(batch)`, after `WARMUP_CALLS` untimed ones."""
    for _ in range(WARMUP_CALLS):
        run(batch)
    timings = []
    for _ in range(TIMED_CALLS):
        started = time.perf_counter()
        run(batch)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def latency(run: Callable[[np.ndarray], Any], x: Any) -> dict[str, Any]:
    """Milliseconds per image at each of BATCH_SIZES, and how they were measured (the card keeps both)."""
    figures: dict[str, Any] = {}
    for size in BATCH_SIZES:
        figures[f"batch_{size}_ms_per_image"] = seconds_per_call(run, batch_of(x, size)) * 1000 / size
    figures["method"] = (
        f"median of {TIMED_CALLS} timed calls after {WARMUP_CALLS} warm-up calls, wall clock, one batch of test "
        f"images per call, on this machine ({os.cpu_count()} CPUs)"
    )
    return figures
