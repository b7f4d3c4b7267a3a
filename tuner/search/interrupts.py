"""Ctrl-C and SIGTERM end the trial in flight cleanly, in a run and in a worker alike.

SIGTERM (what `kill` and Kubernetes send) is turned into KeyboardInterrupt,
so both end the same way: the trial is marked FAIL with its reason, never
left RUNNING. Optuna logs a failed trial with its traceback; for an
interrupt that is noise, so it is filtered out.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class _HideInterruptTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is KeyboardInterrupt)


@contextlib.contextmanager
def interrupts_end_trials() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt and Optuna logs no traceback for it."""
    hide = _HideInterruptTraceback()
    handlers = logging.getLogger("optuna").handlers  # child loggers' records pass through these
    for handler in handlers:
        handler.addFilter(hide)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        for handler in handlers:
            handler.removeFilter(hide)
