"""What Keras trains on here: a GPU, a TPU or the CPU, and whether bfloat16 is fast on it.

The backend was chosen before Keras was imported (the CLI's
tuner.distributed.worker_devices.choose_backend); this asks the backend itself,
which knows whether it really reached the GPU (a CPU-only wheel never does).
"""

from __future__ import annotations

import functools


@functools.cache
def accelerator() -> str:
    """The device Keras trains on by default, as its backend reports it: "gpu", "tpu" or "cpu"."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return str(jax.default_backend())
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


def compute_capability() -> tuple[int, int] | None:
    """The first GPU's CUDA compute capability, (9, 0) for an H100 or H200; None when unknown or no GPU."""
    if accelerator() != "gpu":
        return None
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            text = str(getattr(jax.devices()[0], "compute_capability", ""))
            major, minor = text.split(".")[:2]
            return int(major), int(minor)
        if backend == "tensorflow":
            import tensorflow as tf

            found = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            return tuple(found["compute_capability"])
        if backend == "torch":
            import torch

            return tuple(torch.cuda.get_device_capability())
    except (ValueError, KeyError, IndexError, AttributeError, RuntimeError):
        return None
    return None


def bfloat16_is_fast() -> bool:
    """bfloat16 has tensor-core speed here: a GPU from Ampere on (compute capability 8.0), or a TPU."""
    if accelerator() == "tpu":
        return True
    capability = compute_capability()
    return capability is not None and capability >= (8, 0)
