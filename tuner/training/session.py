"""Memory released after each model, so a study of a thousand trials runs in the memory of a few.

Keras' `clear_session` drops its global state and collects garbage, but
each model's traced TensorFlow graphs stay alive (the graphs and their ops
refer to each other through TensorFlow's C++ side, where Python's garbage
collector cannot see): about 4 MB per model here. The harness therefore
notes the graphs alive when a trial starts and, when it ends (pruned or
not) and its model is dropped, dismantles the graphs the trial traced. JAX keeps every jitted function's
compiled code in memory (dead weight once its model is gone; the persistent
disk cache still spares recompiling a shape seen before). glibc keeps freed
heap pages unless asked to hand them back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable
from typing import Any


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def _backend() -> str:
    import keras

    return str(keras.backend.backend())


def traced_graphs() -> list[Any]:
    """TensorFlow's traced function graphs alive now (none on other backends)."""
    if _backend() != "tensorflow":
        return []
    from tensorflow.python.framework.func_graph import FuncGraph

    return [o for o in gc.get_objects() if isinstance(o, FuncGraph)]


def graphs_alive() -> set[int]:
    """Ids of the graphs alive now: what a later `release_memory(since=...)` leaves alone."""
    return {id(graph) for graph in traced_graphs()}


def release_memory(since: set[int] | None = None) -> None:
    """Forget the models built so far and give their memory back to the system.

    With `since` (from `graphs_alive()`), the TensorFlow graphs traced after it
    are dismantled too: call it so only once the models that used them are dropped.
    """
    import keras

    keras.backend.clear_session()  # (collects garbage too)
    if since is not None and _backend() == "tensorflow":
        from tensorflow.python.framework.func_graph import dismantle_func_graph

        for graph in traced_graphs():
            if id(graph) not in since:
                dismantle_func_graph(graph)
        gc.collect()
    if _backend() == "jax":
        import jax

        jax.clear_caches()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
