"""The Python API's example in docs/python.md runs as written, and the model it returns learned."""

import re
import subprocess
import sys

import pytest
from conftest import REPO, tuner_env

CHECKS = """
evaluated = result.evaluate(x_test, y_test)
assert not result.interrupted and len(result.study.trials) == 2
assert result.model_paths and result.model_paths[0].is_file()
assert evaluated["accuracy"] > 0.5, evaluated  # chance is 0.1; on images the run never read
assert result.card["test"]["accuracy"] > 0.5 and (result.predict(x_test) == y_test).mean() > 0.5
print("checked", evaluated["accuracy"])
"""


def _example(name: str) -> str:
    text = (REPO / "docs" / "python.md").read_text()
    found = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"docs/python.md has no example {name!r}"
    return found.group(1)


def _run_example(name: str, checks: str, folder) -> subprocess.CompletedProcess:
    """docs/python.md's example `name`, then `checks`, in a fresh process in `folder`; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-c", _example(name) + checks],
        cwd=folder,
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_the_tune_example_runs_as_written_and_its_model_learned(tmp_path):
    result = _run_example("tune", CHECKS, tmp_path)
    assert "checked" in result.stdout and "# Study arrays" in result.stdout
    assert (tmp_path / "exports" / "arrays").is_dir() and (tmp_path / "tuner.db").is_file()  # as the docs say


MODEL_CHECKS = """
assert [t.state.name for t in result.study.trials] == ["COMPLETE"] * 3
assert set(result.study.best_params) == {"filters", "dropout", "learning_rate", "batch_size"}
assert result.card["test"]["accuracy"] > 0.7, result.card["test"]  # chance is 0.1
assert result.model.layers[0].filters == result.study.best_params["filters"]
print("checked")
"""


@pytest.mark.slow
def test_the_own_model_example_runs_as_written_and_its_model_learned(tmp_path):
    result = _run_example("model", MODEL_CHECKS, tmp_path)
    assert "checked" in result.stdout
