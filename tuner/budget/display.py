"""The Display of a budget run: phase, time left, best so far.

On a terminal it is a tqdm bar over the budget's seconds, updated every
second; with `--no-progress` (or output to a file) it prints one line per
event instead, each stamped with the seconds since the command started.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tqdm.auto import tqdm


class BudgetDisplay:
    """Use as a context manager; `phase`, `line` and `best` report what happens."""

    def __init__(self, budget: float, started: float, enabled: bool = True):
        self.budget, self.started, self.enabled = budget, started, enabled
        self.current, self.best_text = "starting", ""
        self.bar: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BudgetDisplay:
        if self.enabled:
            self.bar = tqdm(
                total=round(self.budget),
                unit="s",
                dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}s {postfix}",
            )
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
            self._refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self._refresh()
            self.bar.close()

    def elapsed(self) -> float:
        return time.time() - self.started

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._refresh()

    def _refresh(self) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.n = min(self.budget, self.elapsed())
        left = max(0.0, self.budget - self.elapsed())
        bar.set_description_str(self.current, refresh=False)
        bar.set_postfix_str(f"{left:.0f}s left" + (f", best {self.best_text}" if self.best_text else ""), refresh=False)
        bar.refresh()

    def line(self, text: str) -> None:
        """A line above the bar (or on its own), stamped with the seconds since the start."""
        stamped = f"[{self.elapsed():6.0f}s] {text}"
        if self.bar is not None:
            self.bar.write(stamped)
        else:
            print(stamped, flush=True)

    def phase(self, name: str) -> None:
        """The run entered phase `name` (calibrating, search, final training, export)."""
        self.current = name
        self.line(f"-- {name}")
        self._refresh()

    @property
    def shows_best(self) -> bool:
        return self.bar is not None

    def best(self, text: str) -> None:
        """The best so far, as the bar's postfix shows it."""
        self.best_text = text
        self._refresh()

    def trial_done(self) -> None:
        """The bar counts seconds, not trials."""
