"""Search spaces: one module per space, each implementing tuner.core.space.SearchSpace.

A space draws parameters through the trial's `suggest_*` methods and returns
a plain `TrialSpec`; it imports only tuner.core, never Keras or Optuna.
Add a space by writing a module with a `SPACE` object and listing it here.
"""

from __future__ import annotations

from search_spaces import cnn, cnn_cpu
from tuner.core.errors import TunerError
from tuner.core.space import SearchSpace

_ALL: tuple[SearchSpace, ...] = (cnn.SPACE, cnn_cpu.SPACE)
SPACES: dict[str, SearchSpace] = {space.name: space for space in _ALL}


def available_spaces() -> list[str]:
    """The names of the spaces, sorted."""
    return sorted(SPACES)


def get_space(name: str) -> SearchSpace:
    """The space called `name` (for example "cnn"); one line of TunerError for an unknown name."""
    if name not in SPACES:
        raise TunerError(f"unknown search space {name!r}; choose one of {', '.join(available_spaces())}")
    return SPACES[name]
