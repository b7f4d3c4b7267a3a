"""Search spaces: one module per space, each implementing tuner.core.space.SearchSpace.

A space draws parameters through the trial's `suggest_*` methods and returns
a plain `TrialSpec`; it imports only tuner.core, never Keras or Optuna.
Add a space to the package by writing a module with a `SPACE` object and
listing it here; or keep it in a file of your own and pass its path as the
`space` setting (`--space my_space.py`): the file defines `SPACE` the same
way (docs/own-space.md).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import traceback
from pathlib import Path

from search_spaces import cnn, cnn_cpu
from tuner.core.errors import TunerError
from tuner.core.settings import is_space_file
from tuner.core.space import SearchSpace

_ALL: tuple[SearchSpace, ...] = (cnn.SPACE, cnn_cpu.SPACE)
SPACES: dict[str, SearchSpace] = {space.name: space for space in _ALL}
FIX = "see docs/own-space.md"


def available_spaces() -> list[str]:
    """The names of the spaces, sorted."""
    return sorted(SPACES)


def get_space(name: str) -> SearchSpace:
    """The space called `name` (for example "cnn"), or the one a `.py` file defines; one line of TunerError else."""
    if is_space_file(name):
        return load_space_file(str(Path(name).expanduser().resolve()))
    if name not in SPACES:
        raise TunerError(
            f"unknown search space {name!r}; choose one of {', '.join(available_spaces())}, or give a .py file's path"
        )
    return SPACES[name]


def _where(error: BaseException, path: Path) -> str:
    """' (line N)': the deepest line of the file that the error passed through, if any."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f" (line {error.lineno})"
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
    return f" (line {lines[-1]})" if lines else ""


@functools.lru_cache(maxsize=8)
def load_space_file(path_text: str) -> SearchSpace:
    """The `SPACE` that the Python file at `path_text` defines, loaded once per process.

    The file runs as a module of its own (not part of this package), so it may
    import tuner.core and anything else installed. A missing file, a file that
    fails to run, or one without a usable `SPACE` is one TunerError naming the fix.
    """
    path = Path(path_text)
    if not path.is_file():
        raise TunerError(f"search space file {path} does not exist; fix --space or the study file's space = ...")
    module_name = f"_tuner_space_file_{abs(hash(path_text)):x}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TunerError(f"search space file {path} cannot be loaded as Python; give the path of a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up by its name
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        said = " ".join(str(error).split())  # one line, whatever the error says
        raise TunerError(
            f"search space file {path} fails to load{_where(error, path)}: {type(error).__name__}: {said}; fix the file"
        ) from None
    space = getattr(module, "SPACE", None)
    if space is None:
        raise TunerError(f"search space file {path} defines no SPACE; define SPACE = Space(...) in it ({FIX})")
    if not isinstance(space, SearchSpace):
        raise TunerError(
            f"SPACE in {path} is a {type(space).__name__}, not a search space (it needs name, baselines, "
            f"trait_defaults, portfolio and suggest); build it with tuner.core.space.Space ({FIX})"
        )
    return space
