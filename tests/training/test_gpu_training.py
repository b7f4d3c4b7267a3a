"""What a GPU run relies on, trained for real on JAX's CPU backend: bfloat16 mixed precision and the compilation cache.

Each test runs Python with KERAS_BACKEND=jax in a subprocess (the backend is
fixed when Keras is imported; the test process runs TensorFlow). Whether
bfloat16 costs accuracy on a GPU is measured by benchmarks/gpu.sh on one;
here it must not break learning.
"""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest
from conftest import run_tuner, tuner_env
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

BFLOAT16_VS_FLOAT32 = """
import json
import numpy as np
from search_spaces import cnn
from tuner.data import load_dataset
from tuner.search.objective import spec_for_params
from tuner.training.harness import cross_validate
from tuner.training.models import build_model

digits = load_dataset("digits")
spec = spec_for_params(cnn.SPACE, {**cnn.BASELINES["seed000-v1"], "epochs": 3}, digits, 3)
model = build_model(spec.model, "mixed_bfloat16")
conv, out = model.get_layer("block0_conv0"), model.get_layer("classes")
probabilities = model(digits.x_train[:4])
plain = build_model(spec.model)
figures = {
    "conv_compute": conv.compute_dtype, "conv_weights": conv.kernel.dtype,
    "output_compute": out.compute_dtype, "output_values": str(probabilities.dtype),
    "plain_conv_compute": plain.get_layer("block0_conv0").compute_dtype,
    "sums_to_one": float(np.abs(np.asarray(probabilities).sum(axis=1) - 1).max()),
}
for precision in ("mixed_bfloat16", "float32"):
    result = cross_validate(spec, digits.x_train, digits.y_train, folds=2, seed=1, max_epochs=3, precision=precision)
    figures[precision] = result.mean_val_accuracy
print(json.dumps(figures))
"""


def _jax(code: str, *args: str, env: dict[str, str] | None = None, cwd=None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=tuner_env({"KERAS_BACKEND": "jax", **(env or {})}),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bfloat16_computes_in_bfloat16_keeps_float32_weights_and_outputs_and_learns(tmp_path):
    figures = _jax(BFLOAT16_VS_FLOAT32, env={"TUNER_COMPILATION_CACHE": str(tmp_path / "cache")})
    assert figures["conv_compute"] == "bfloat16" and figures["conv_weights"] == "float32"
    assert figures["output_compute"] == "float32" and figures["output_values"] == "float32"  # softmax in float32
    assert figures["sums_to_one"] < 1e-5  # float32 probabilities, not bfloat16's 3 digits
    assert figures["plain_conv_compute"] == "float32"  # the policy did not leak to the next model built
    # the same recipe learns under both (3 epochs, 2 folds of digits; chance is 0.1)
    assert figures["mixed_bfloat16"] > 0.85 and figures["float32"] > 0.85
    assert abs(figures["mixed_bfloat16"] - figures["float32"]) < 0.05, figures


def test_a_bfloat16_study_learns_records_its_precision_and_exports(tmp_path, sqlite_url):
    common = ["--storage", sqlite_url]
    env = {"KERAS_BACKEND": "jax", "TUNER_COMPILATION_CACHE": str(tmp_path / "cache")}
    study = ["digits", "--trials", "2", "--baselines", "seed000-v1,seed000-v2", "--folds", "2", "--epochs", "3"]
    result = run_tuner(*study, "--precision", "mixed_bfloat16", "--no-progress", *common, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="digits", storage=sqlite_url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and all(t.user_attrs["precision"] == "mixed_bfloat16" for t in complete)
    assert all(t.user_attrs["device"] == "cpu" and t.user_attrs["backend"] == "jax" for t in complete)
    assert max(t.value for t in complete) > 0.85
    exported = run_tuner(
        "export", "digits", "--precision", "mixed_bfloat16", "--out", str(tmp_path / "out"), *common, cwd=tmp_path, env=env
    )
    assert exported.returncode == 0, exported.stderr
    card = json.loads(next((tmp_path / "out").glob("*.card.json")).read_text())
    assert card["final_training"]["precision"] == "mixed_bfloat16" and card["final_training"]["device"] == "cpu"
    assert card["test"]["accuracy"] > 0.85
    assert "on cpu in mixed_bfloat16" in next((tmp_path / "out").glob("*.card.md")).read_text()


TRAIN_AND_COUNT_CACHE_HITS = """
import json, sys
import jax.monitoring
from search_spaces import cnn
from tuner.data import load_dataset
from tuner.search.objective import spec_for_params
from tuner.training import compilation
from tuner.training.harness import cross_validate

compilation.MIN_COMPILE_SECONDS = 0.0  # digits' tiny programs compile in milliseconds here: keep them all
events = []
jax.monitoring.register_event_listener(lambda name, **kwargs: events.append(name))
digits = load_dataset("digits")
spec = spec_for_params(cnn.SPACE, {**cnn.BASELINES["seed000-v1"], "epochs": 1}, digits, 1)
cross_validate(spec, digits.x_train, digits.y_train, folds=2, max_folds=1, seed=0, max_epochs=1)
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses"),
                  "folder": str(compilation.cache_dir())}))
"""


def test_the_compilation_cache_folder_is_created_and_a_second_process_reuses_it(tmp_path):
    cache = tmp_path / "cache" / "jax"
    env = {"TUNER_COMPILATION_CACHE": str(cache)}
    first = _jax(TRAIN_AND_COUNT_CACHE_HITS, env=env, cwd=tmp_path)
    entries = sorted(p.name for p in cache.iterdir())
    assert first["folder"] == str(cache) and cache.is_dir() and (cache.stat().st_mode & 0o777) == 0o700
    assert first["misses"] > 0 and entries  # compiled, and written to the folder
    second = _jax(TRAIN_AND_COUNT_CACHE_HITS, env=env, cwd=tmp_path)
    assert second["hits"] > 0 and second["misses"] < first["misses"], (first, second)  # the same shapes: loaded
    assert set(entries) <= {p.name for p in cache.iterdir()}  # reused, not replaced


def test_the_compilation_cache_can_be_turned_off(tmp_path):
    figures = _jax(TRAIN_AND_COUNT_CACHE_HITS, env={"TUNER_COMPILATION_CACHE": "off", "HOME": str(tmp_path)})
    assert figures["folder"] == "None" and figures["hits"] == 0
    assert not (tmp_path / ".cache" / "tuner").exists()
