"""A progress bar over a trial count, with the running best; plain lines when it is off."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


class CountDisplay:
    """The Display of a trial-count run in this process (tuner.search.strategy.Display)."""

    def __init__(self, trials: int | None, name: str, enabled: bool = True):
        self.trials, self.name, self.enabled = trials, name, enabled
        self.bar: Any = None

    def __enter__(self) -> CountDisplay:
        if self.enabled:
            self.bar = tqdm(total=self.trials, unit="trial", desc=self.name, dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def line(self, text: str) -> None:
        """A line above the bar, or on its own."""
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    @property
    def shows_best(self) -> bool:
        return self.bar is not None

    def best(self, text: str) -> None:
        """The running best, as the bar's postfix."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"best {text}")

    def phase(self, name: str) -> None:
        """A trial count has one phase worth showing: the trials."""

    def trial_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
