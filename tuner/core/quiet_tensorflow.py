"""TensorFlow imported with its start-up notices kept off stderr, so that a one-line error stays one line.

With oneDNN's kernels on (TensorFlow's default on x86, and 1.8 to 1.9 times
faster training on the 2-core CPU: benchmarks/onednn.py), TensorFlow writes
notices when its library loads, before its logging starts, so
TF_CPP_MIN_LOG_LEVEL cannot silence them. `install` wraps the process's
first import of tensorflow: meanwhile file descriptor 2 goes to a temporary
file, and every line written there except those notices is written back to
stderr. Nothing is imported until something imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

NOTICES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)


@contextlib.contextmanager
def notices_kept_off_stderr() -> Iterator[None]:
    """For the `with` block: what is written to file descriptor 2, less TensorFlow's notices, reaches stderr after it.

    Without a file descriptor 2 (a process started with stderr closed) the block runs as it is.
    """
    if sys.stderr:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # closed: there is no stderr to keep the notices off
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not any(notice in line for notice in NOTICES))
            if kept and sys.stderr:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, its module executed with the notices kept off stderr."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with notices_kept_off_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _FirstImport(importlib.abc.MetaPathFinder):
    """Finds tensorflow once, through the other finders, and hands it the quiet loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Keep TensorFlow's start-up notices off stderr when this process first imports it (once; idempotent)."""
    if "tensorflow" in sys.modules or any(isinstance(finder, _FirstImport) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstImport())
