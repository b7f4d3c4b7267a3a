"""Batch-1 inference latency: how long the trained Keras model takes to classify one image on this machine.

The figure is the median, in milliseconds, of `LATENCY_CALLS` single-image
`model.predict_on_batch` calls after `WARMUP_CALLS` unmeasured ones (which
trace and compile the predict function). `predict_on_batch` runs Keras'
compiled predict step without `predict`'s per-call set-up (a data adapter,
callbacks), so it measures the model rather than the loop around it; an eager
`model(x)` on TensorFlow adds Python overhead several times the model's own
time on small CNNs. It is the model as trained and exported (the `.keras`
file), on the device it trained on, under that machine's load: compare
latencies within one study.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

WARMUP_CALLS = 5
LATENCY_CALLS = 30


def batch1_latency_ms(model: Any, image: np.ndarray, calls: int = LATENCY_CALLS, warmup: int = WARMUP_CALLS) -> float:
    """Median milliseconds of `model.predict_on_batch` on one image (shape without the batch axis)."""
    batch = np.ascontiguousarray(image[np.newaxis])
    for _ in range(warmup):
        model.predict_on_batch(batch)
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        model.predict_on_batch(batch)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds) * 1000.0)
