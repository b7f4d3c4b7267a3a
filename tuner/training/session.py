"""Memory released after each model, so a study of a thousand trials runs in the memory of a few.

Keras' `clear_session` drops its global state and collects garbage; JAX
also keeps every jitted function's compiled code in memory (dead weight once
its model is gone: a new model is a new function; the persistent disk cache
still spares recompiling a shape seen before); and glibc keeps freed heap
pages in its arenas unless asked to hand them back, which is most of the
RSS growth a long study shows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def release_memory() -> None:
    """Forget the models built so far and give their memory back to the system."""
    import keras

    keras.backend.clear_session()  # (collects garbage too)
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
