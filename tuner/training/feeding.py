"""Images in memory -> the batches `fit` reads: on TensorFlow, a tf.data pipeline without autotuning.

Given arrays, Keras on TensorFlow builds its own tf.data pipeline, whose
autotuner decides buffer sizes and threads while the model trains. On a
small CPU that autotuner can settle, for whole epochs at a time, into a slow
state with a core half idle; the same pipeline with autotuning off does not
(`benchmarks/feeding.py` measures the two side by side; benchmarks/journal.md,
"Eighth step"). `fit_data` therefore hands TensorFlow a plain pipeline of
its own: the indices shuffled every epoch (seeded), cut into batches, each
batch gathered from the arrays, two batches prefetched, autotuning off.
Other backends read the arrays through Keras (they use no tf.data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PREFETCH_BATCHES = 2  # gathered ahead while the model trains on the current one


def _tensorflow() -> bool:
    import keras

    return bool(keras.backend.backend() == "tensorflow")


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> Any:
    import tensorflow as tf

    images, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    order = tf.data.Dataset.range(len(y))
    if shuffle:
        order = order.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def fit_data(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = True, seed: int = 0) -> dict[str, Any]:
    """`fit` keyword arguments that feed (x, y) in batches of `batch_size`, reshuffled every epoch when `shuffle`."""
    if _tensorflow():  # the pipeline shuffles itself; Keras' own shuffle would only warn that it cannot
        return {"x": _batches(x, y, batch_size, shuffle, seed), "shuffle": False}
    return {"x": x, "y": y, "batch_size": batch_size, "shuffle": shuffle}


def validation_data(x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, Any]:
    """`fit` keyword arguments that validate on (x, y) in batches of `batch_size`, in order."""
    if _tensorflow():
        return {"validation_data": _batches(x, y, batch_size, False, 0)}
    return {"validation_data": (x, y), "validation_batch_size": batch_size}
