"""Reproducible training (`--deterministic`): the same seed gives the same weights, bit for bit, on one machine.

Seeding alone (Python, NumPy and the backend, `keras.utils.set_random_seed`,
which the harness does for every trial) fixes the initial weights, dropout
masks and shuffles, but not the order in which parallel kernels add up
floating-point numbers. This switches the backend to deterministic kernels
for the rest of the process: on TensorFlow `enable_op_determinism` (which
also makes tf.data keep its order), on JAX the XLA flag
`--xla_gpu_deterministic_ops` (read when JAX starts its GPU backend; JAX on a
CPU is deterministic already). What it costs in speed:
`benchmarks/determinism.py`, docs/reproducibility.md.
"""

from __future__ import annotations

import os
import random

import numpy as np

XLA_FLAG = "--xla_gpu_deterministic_ops=true"

_enabled = False


def enabled() -> bool:
    """Whether this process trains deterministically."""
    return _enabled


def enable(seed: int) -> None:
    """Seed Python, NumPy and the backend with `seed` and turn on deterministic ops, for the rest of the process."""
    global _enabled
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    if XLA_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_FLAG}".strip()
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)  # (Python, NumPy and the backend's generator)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    _enabled = True
