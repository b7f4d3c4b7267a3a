"""A worker's display: one line per event, prefixed with the worker's id (its output interleaves with others')."""

from __future__ import annotations


class WorkerDisplay:
    """The Display of a worker process (tuner.search.strategy.Display)."""

    def __init__(self, worker: str):
        self.prefix = f"[{worker}] "

    def __enter__(self) -> WorkerDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def line(self, text: str) -> None:
        print(self.prefix + text, flush=True)

    @property
    def shows_best(self) -> bool:
        return False

    def best(self, text: str) -> None:
        """The running best is the run's to show, not each worker's."""

    def phase(self, name: str) -> None:
        self.line(f"-- {name}")

    def trial_done(self) -> None:
        """Nothing to count: the lines say it."""
