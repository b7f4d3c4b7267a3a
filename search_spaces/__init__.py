"""Search spaces: one module per space, each a pure `suggest(trial, ...) -> TrialSpec`.

A space module defines:
- `suggest(trial, input_shape, num_classes, max_epochs) -> tuner.spec.TrialSpec`
- `BASELINES`: named parameter sets (hand-made models) that `suggest` accepts
  through `optuna.trial.FixedTrial`, so they can be enqueued as warm starts.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from tuner.errors import TunerError


def available_spaces() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_space(name: str) -> ModuleType:
    """The space module called `name` (for example "cnn")."""
    if name not in available_spaces():
        raise TunerError(f"unknown search space {name!r}; choose one of {', '.join(available_spaces())}")
    return importlib.import_module(f"{__name__}.{name}")
