"""Ctrl-C and SIGTERM end the trial in flight cleanly, in a run and in a worker alike.

Both signals raise KeyboardInterrupt (SIGTERM is what `kill` and Kubernetes
send) and set tuner.core.interrupt's flag, which the harness checks after
every epoch and the run loops after every trial, so an interrupt swallowed
inside a finalizer still stops the run. The trial is marked FAIL with its
reason, never left RUNNING. Optuna logs a failed trial with its traceback;
for an interrupt that is noise, so it is filtered out.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import Any

from tuner.core import interrupt


def _interrupt(signum: int, frame: Any) -> None:
    interrupt.request()
    raise KeyboardInterrupt


def _quiet_unraisable(unraisable: Any) -> None:
    """An interrupt raised inside a finalizer is handled through the flag: no "Exception ignored" traceback."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


class _HideInterruptTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is KeyboardInterrupt)


@contextlib.contextmanager
def interrupts_end_trials() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt (and set the flag); Optuna logs no traceback for it."""
    hide = _HideInterruptTraceback()
    handlers = logging.getLogger("optuna").handlers  # child loggers' records pass through these
    for handler in handlers:
        handler.addFilter(hide)
    interrupt.clear()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for sig, old in previous.items():
            signal.signal(sig, old)
        for handler in handlers:
            handler.removeFilter(hide)
