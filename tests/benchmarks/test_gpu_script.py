"""benchmarks/gpu.sh, rehearsed on a CPU: every step a GPU run takes, on a tiny study, to the figures it writes.

The GPU figures themselves come only from a run on a GPU (README: "On a GPU").
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from conftest import REPO, requires_fashion, tuner_env

pytestmark = [pytest.mark.slow, requires_fashion()]


def test_the_gpu_script_runs_to_the_end_on_a_cpu_and_writes_its_figures(tmp_path):
    out = tmp_path / "out"
    env = tuner_env({"OUT": str(out), "KERAS_BACKEND": "jax", "TUNER_COMPILATION_CACHE": str(tmp_path / "cache")})
    tiny = ["--baselines", "seed000-v1,seed000-v2", "--subset", "600"]
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), "--cpu", "--trials", "2", "--", *tiny],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads((out / "gpu.json").read_text())
    phases = figures["phases"]
    assert phases["search_exit"] == 0 and phases["export_exit"] == 0 and phases["cpu_rehearsal"] is True
    assert 0 < phases["search_seconds"] < phases["total_seconds"] < phases["deadline"]
    assert figures["trials_complete"] == 2 and figures["baselines_complete"] == ["seed000-v1", "seed000-v2"]
    assert figures["backends"] == ["jax"] and figures["devices"] == ["cpu"] and figures["precisions"] == ["float32"]
    assert figures["images_trained"] == 2 * 2 * 300  # 2 trials x 2 folds x 1 epoch x 300 images of a fold
    assert figures["exported"] and figures["final_device"] == "cpu"
    assert figures["test_accuracy"] > 0.3  # one epoch on 600 images: well above chance (0.1)
    assert figures["best_cv_accuracy"] > 0.3 and figures["gpu_samples"] == 0
    assert figures["aggregate_images_per_second"] > 0
    assert phases["compilation_cache_files_after"] > phases["compilation_cache_files_before"] == 0
    assert {"gpu.json", "gpu.log", "summary.md", "journal.log.gz"} <= {p.name for p in out.iterdir()}
    assert any(p.name.endswith(".card.json") for p in out.iterdir())
    log = (out / "gpu.log").read_text()
    assert "search: python3 -m tuner fashion --trials 2 --workers 2" in log
    work = re.search(r"--storage journal://(\S+)/journal\.log", log).group(1)
    assert not os.path.exists(work)  # its working folder is gone: what it keeps is in $OUT


def test_the_gpu_script_refuses_an_unknown_option(tmp_path):
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), "--trails", "3"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown option --trails" in result.stderr
