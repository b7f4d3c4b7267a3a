"""Memory released after each model, so a study of a thousand trials runs in the memory of a few.

Keras' `clear_session` drops its global state and collects garbage, but on
TensorFlow each trained model stays alive through its traced gradients:
every trace of a `custom_gradient` registers a gradient function, under a
new name, in TensorFlow's global gradient registry, and that function's
closure holds the traced graph's tensors, hence the graph, its ops and the
model's variables (about 8 MB per trial on digits). The harness therefore
takes a `Snapshot` when a trial starts and, once the trial is over (pruned
or not) and its model dropped, removes the gradients registered since and
dismantles the graphs traced since. JAX keeps every jitted function's
compiled code in memory (dead weight once its model is gone; the persistent
disk cache still spares recompiling a shape seen before). glibc keeps freed
heap pages unless asked to hand them back.

Each release collects garbage, and a full collection walks every object
Python tracks: after importing TensorFlow about half a million, 0.2 s a
walk, several walks per fold. The first snapshot therefore moves the
objects alive before any trial (the imports, the data, the study) to
Python's permanent generation (`gc.freeze`), so each later collection walks
only what the trials made. Frozen objects are still freed when nothing
refers to them; only cycles among them stay.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Snapshot:
    """What TensorFlow held when a trial started: what `release_memory(since=...)` leaves alone."""

    graphs: frozenset[int] = frozenset()
    gradients: frozenset[str] = frozenset()


def _gradient_registry() -> dict[str, Any]:
    from tensorflow.python.framework import ops

    return ops._gradient_registry._registry  # (private: TensorFlow has no public way to unregister)


def snapshot() -> Snapshot:
    """The traced graphs and registered gradients alive now (nothing to note on other backends).

    The first call also freezes the objects alive before it (see the module's docstring).
    """
    backend = _backend()  # (imports Keras first, so that its objects are frozen too)
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()
    if backend != "tensorflow":
        return Snapshot()
    return Snapshot(frozenset(id(graph) for graph in traced_graphs()), frozenset(_gradient_registry()))


def release_memory(since: Snapshot | None = None) -> None:
    """Forget the models built so far and give their memory back to the system.

    With `since` (a `snapshot()`), TensorFlow's gradients registered and graphs
    traced after it go too: only once the models that used them are dropped.
    """
    import keras

    keras.backend.clear_session()  # (collects garbage too)
    if since is not None and _backend() == "tensorflow":
        from tensorflow.python.framework.func_graph import dismantle_func_graph

        registry = _gradient_registry()
        for name in [n for n in registry if n not in since.gradients and n.startswith("CustomGradient-")]:
            del registry[name]
        gc.collect()
        for graph in traced_graphs():
            if id(graph) not in since.graphs:
                dismantle_func_graph(graph)
        gc.collect()
    if _backend() == "jax":
        import jax

        jax.clear_caches()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
