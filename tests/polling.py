"""One way for tests to wait: poll a condition until it holds or a deadline passes (no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 60, interval: float = 0.2, what: str = "the condition") -> T:
    """Call `condition` until it returns something truthy (returned); AssertionError after `timeout` seconds.

    Exceptions raised by `condition` count as "not yet" (a server still starting, a table not created yet).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # not ready yet
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g}s (last error: {last_error!r})")
        time.sleep(interval)
