"""Shared test plumbing: run the real CLI in a subprocess, open the studies it made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MNIST_SUBSET = SHARED / "data" / "mnist-10k.npz"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_tuner(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m tuner ARGS` in `cwd`, as a person would run it."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, one line on stderr that names the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def requires_fashion():
    return pytest.mark.skipif(
        not FASHION_DIR.exists(), reason="Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
    )
