"""A Ctrl-C that cannot be lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when
the signal arrives; if that is inside a finalizer (`__del__`, run by the
garbage collector after a trial or while Keras clears a model), the
exception is printed as "ignored" and the run goes on as if nothing had
happened. So the signal handler also sets a flag, and the long-running loops
(each epoch, each trial) check it: the interrupt then takes effect at the
next such point at the latest.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask the run to stop (the signal handler calls this)."""
    _requested.set()


def clear() -> None:
    """Forget an earlier request (a new run starts)."""
    _requested.clear()


def check() -> None:
    """Raise KeyboardInterrupt if a stop was asked for and not yet acted on."""
    if _requested.is_set():
        raise KeyboardInterrupt
