"""One way for tests to wait: poll a condition until it holds or a deadline passes (no fixed sleeps)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 60,
    interval: float = 0.2,
    what: str = "the condition",
    give_up: Callable[[], str | None] | None = None,
) -> T:
    """Call `condition` until it returns something truthy (returned); AssertionError after `timeout` seconds.

    Exceptions raised by `condition` count as "not yet" (a server still starting, a table not created yet).
    `give_up`, called before each try, returns why waiting longer is pointless (a process it waits on has
    ended), or None: a reason fails the wait at once, with the last error the condition raised.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    tries = 0
    while True:
        reason = give_up() if give_up else None
        if reason:
            raise AssertionError(f"{what}: gave up after {tries} tries (last error: {last_error!r}): {reason}")
        tries += 1
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # not ready yet
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g}s (last error: {last_error!r})")
        time.sleep(interval)


def ended(*processes: subprocess.Popen) -> Callable[[], str | None]:
    """A `give_up` for wait_for: once one of `processes` has ended, its exit status and output."""

    def reason() -> str | None:
        for process in processes:
            if process.poll() is not None:
                out, err = process.communicate()
                return f"a process ended (exit {process.returncode}):\n{out or ''}{err or ''}"
        return None

    return reason
