"""The benchmark suite's made sets, rehearsal on a hold-out of the training split, the pre-registered report.

The made sets come from files in the repository (benchmarks/data/mnist-10k.npz) and scikit-learn's
digits; the report runs in a clone of this repository's last commit, so that its clean-tree check can pass.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, fills_a_wall_clock, tuner_env
from polling import wait_for

from benchmarks import suite
from benchmarks.budget import _rehearsal_data, _source
from tuner.data.image_folder import load_folder


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("suite")
    suite.make(out, ["mnist-unbalanced-32", "digits-colour-64"])
    return out


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_made_sets_have_the_sizes_colours_and_balance_they_are_described_with(made):
    unbalanced = load_folder(str(made / "mnist-unbalanced-32"))
    assert unbalanced.input_shape == (32, 32, 1)
    counts = np.bincount(unbalanced.y_train)
    assert counts.max() / counts.min() > 15  # 600 down to 24 before the test split
    colour = load_folder(str(made / "digits-colour-64"))
    assert colour.input_shape == (64, 64, 3)
    assert colour.x_train[..., 0].std() > 0.05 and not np.allclose(colour.x_train[..., 0], colour.x_train[..., 1])
    manifest = json.loads((made / "suite.json").read_text())
    assert sum(manifest["mnist-unbalanced-32"]["images"].values()) == sum(round(600 * 0.7**d) for d in range(10))
    assert sum(manifest["digits-colour-64"]["images"].values()) == 1797


def test_making_a_set_again_writes_the_same_files(made, tmp_path):
    suite.make(tmp_path, ["mnist-unbalanced-32"])
    assert _digest(tmp_path / "mnist-unbalanced-32") == _digest(made / "mnist-unbalanced-32")


def test_a_folder_rehearsal_holds_out_part_of_the_training_files_and_never_the_test_split(made, tmp_path):
    source = load_folder(str(made / "mnist-unbalanced-32"))
    study, overrides = _source("mnist-unbalanced-32", None, str(made))
    data, rehearsal = _rehearsal_data(study, overrides, tmp_path / "copy")
    copy = load_folder(rehearsal["dataset"].removeprefix("folder:"))  # train/ and test/: the copy's own split
    held_x, held_y = copy.test_split()
    assert len(copy.y_train) == data["train_images"] and len(held_y) == data["holdout_images"]
    assert len(copy.y_train) + len(held_y) == len(source.y_train)
    assert 0.15 < len(held_y) / len(source.y_train) < 0.25  # 1/K, K = 5 folds
    assert set(np.unique(held_y)) == set(range(10))  # stratified: even the rarest digit is held out
    names = {Path(p).name.split("-", 1)[1] for p in copy.options["train_paths"]}
    trained_on = {Path(p).name for p in source.options["train_paths"]}
    assert names <= trained_on and len(names) == len(copy.y_train)  # only the source's training files
    assert source.test_split_reads == 0


def test_an_array_rehearsal_writes_the_training_split_as_an_npz_with_a_held_out_test(tmp_path):
    study, overrides = _source("digits", None, None)
    data, rehearsal = _rehearsal_data(study, overrides, tmp_path / "copy")
    with np.load(rehearsal["dataset"]) as arrays:
        assert len(arrays["y_train"]) == data["train_images"] == 958
        assert len(arrays["y_test"]) == data["holdout_images"] == 479  # 1/3: the digits study has 3 folds
        assert arrays["x_train"].dtype == np.uint8
    assert data["pixel_rounding"] < 1 / 255


def test_a_folder_with_train_and_test_folders_of_other_classes_is_refused_in_one_line(tmp_path):
    from PIL import Image

    from tuner.core.errors import TunerError

    for part, classes in (("train", "ab"), ("test", "ac")):
        for name in classes:
            (tmp_path / part / name).mkdir(parents=True)
            for index in range(2):
                Image.new("L", (8, 8), index * 99).save(tmp_path / part / name / f"{index}.png")
    with pytest.raises(TunerError, match="train/ has classes a, b but test/ has a, c; give both the same class folders"):
        load_folder(str(tmp_path))


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    return clone


def _report(clone: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/budget.py", "report", *args],
        cwd=clone,
        env=tuner_env({"PYTHONPATH": str(clone)}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(result: subprocess.CompletedProcess, fragment: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and fragment in lines[0], (result.returncode, result.stderr)


def test_the_report_refuses_a_tree_with_uncommitted_changes_or_a_busy_machine_in_one_line(tmp_path):
    clone = _clone(tmp_path)
    results, benchmarks = clone / "benchmarks" / "results", (clone / "BENCHMARKS.md").read_text()
    clean = _report(clone, "--budget", "45s", "--runs", "2", "--dataset", "digits", "--max-load", "-1")
    _one_line(clean, "load average")  # a clean tree, refused for the load alone
    with (clone / "README.md").open("a") as readme:
        readme.write("prose, which no run reads\n")
    prose = _report(clone, "--budget", "45s", "--runs", "2", "--dataset", "digits", "--max-load", "-1")
    _one_line(prose, "load average")  # still only the load
    (clone / "notes.txt").write_text("an edit\n")
    dirty = _report(clone, "--budget", "45s", "--runs", "2", "--dataset", "digits")
    _one_line(dirty, "uncommitted changes (?? notes.txt")
    assert not list(results.glob("report-*-digits-45s*"))  # nothing registered (committed reports of others stay)
    assert (clone / "BENCHMARKS.md").read_text() == benchmarks


def test_a_reports_section_states_every_run_then_mean_sd_min_and_max():
    from benchmarks.budget import report_section, spread

    stats = spread([0.9412, 0.9380, 0.9455])
    assert stats["values"] == [0.9412, 0.9380, 0.9455] and (stats["min"], stats["max"]) == (0.9380, 0.9455)
    assert stats["mean"] == pytest.approx(0.94157, abs=1e-5) and stats["sd"] == pytest.approx(0.003764, abs=1e-6)
    assert spread([0.93])["sd"] == 0.0  # one run states no spread
    run = {"ensemble_test_accuracy": None, "wall_seconds": 3570.0, "date": "2026-12-06T20:01:07+00:00"}
    report = {
        "commit": "0123456789abcdef",
        "dataset": "fashion",
        "budget": 3600.0,
        "budget_text": "1h",
        "date": "2026-12-06T20:00:00Z",
        "command": "python benchmarks/budget.py report --budget 1h --runs 3",
        "tuner_command": "python -m tuner fashion --budget 1h --no-progress",
        "machine": {"cpu": "AMD EPYC", "cores": 2},
        "load_at_start": 0.05,
        "max_load": 0.5,
        "logs": "benchmarks/results/report-0123456789-fashion-1h-run*.log",
        "runs": [{**run, "test_accuracy": value} for value in stats["values"]],
        "test_accuracy": stats,
        "interrupted": [{"run": 2, "log": "benchmarks/results/r-run2-interrupted1.log", "test_accuracies": [0.9391]}],
    }
    section = report_section(report)
    assert "## Report 0123456789: fashion, --budget 1h, 3 runs (2026-12-06)" in section
    assert "| 1 | 2026-12-06 20:01 | 0.9412 | - | 3570 | 99.2% |" in section
    assert "| 3 | 2026-12-06 20:01 | 0.9455 | - | 3570 | 99.2% |" in section
    assert "Run 2 was cut short once (its session ended); its test figures: 0.9391 (" in section  # published, not counted
    assert "mean 0.9416 ± 0.0038 (sd), min 0.9380, max 0.9455, over 3 runs" in section
    assert "AMD EPYC (2 cores), load average 0.05 at the start (refused above 0.5)" in section
    report["machine"] = {"cpu": "AMD EPYC", "cores": 2, "cpu_family_model": "25/1", "cpu_features": ["avx2"]}
    assert "AMD EPYC (family/model 25/1, avx2; 2 cores), load average" in report_section(report)


@pytest.mark.slow
@fills_a_wall_clock
def test_the_report_runs_a_fresh_budget_run_and_keeps_its_figure(tmp_path):
    """One fresh 90 s run (60 s judged nothing on a loaded machine: calibration alone took most of it), after an
    attempt cut short as a session's end cuts it: the same command continues the report and publishes the attempt.

    The figures of several runs (every one, then mean, sd, min, max) are the fast test above.
    """
    clone = _clone(tmp_path)
    before = (clone / "BENCHMARKS.md").read_text()
    results = clone / "benchmarks" / "results"
    args = ["--budget", "1m30s", "--runs", "1", "--dataset", "digits", "--max-load", "1000", "--work", str(tmp_path / "w")]
    command = [sys.executable, "benchmarks/budget.py", "report", *args]
    cut_short = subprocess.Popen(command, cwd=clone, env=tuner_env({"PYTHONPATH": str(clone)}), start_new_session=True)
    wait_for(lambda: list(results.glob("report-*-digits-1m30s-run1.log")), timeout=120, what="run 1 started")
    os.killpg(cut_short.pid, signal.SIGKILL)  # the report and its run, as a session's end kills them
    cut_short.wait()
    result = _report(clone, *args, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "continuing report-" in result.stdout and "0 of 1 runs done" in result.stdout
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    (path,) = results.glob(f"report-{commit[:10]}-digits-*.json")
    report = json.loads(path.read_text())
    assert path.name == f"report-{commit[:10]}-digits-1m30s.json" and report["budget"] == 90
    assert report["commit"] == commit and report["machine"]["cores"] and report["max_load"] == 1000
    (run,) = report["runs"]
    assert report["test_accuracy"]["values"] == [run["test_accuracy"]] and run["test_accuracy"] > 0.5  # chance: 0.1
    assert run["head"] == commit and run["cores"] and run["date"]
    assert "Budget 90s: done in" in (clone / run["log"]).read_text()  # the run's own log, kept
    (attempt,) = report["interrupted"]
    assert attempt["run"] == 1 and attempt["test_accuracies"] == [] and (clone / attempt["log"]).exists()
    section = (clone / "BENCHMARKS.md").read_text()[len(before) :]
    assert f"## Report {commit[:10]}: digits, --budget 1m30s, 1 run (" in section
    assert f"mean {run['test_accuracy']:.4f}" in section and "Run 1 was cut short once" in section
    assert "python -m tuner digits --budget 1m30s --no-progress" in section
    _one_line(_report(clone, *args), "already measured this code")  # a complete report is not run again


@pytest.mark.slow
@fills_a_wall_clock
def test_a_rehearsal_of_a_made_folder_scores_its_hold_out_and_keeps_its_json(made, tmp_path, monkeypatch):
    from benchmarks import budget

    monkeypatch.setattr(budget, "RESULTS", tmp_path / "results")  # a figure of a test machine, not one to keep
    work = str(tmp_path / "rehearsal")
    args = ["rehearse", "--dataset", "mnist-unbalanced-32", "--suite-dir", str(made), "--budget", "90s"]
    assert budget.main([*args, "--arm", "none", "--work", work]) == 0
    figures = json.loads((tmp_path / "results" / "rehearse-mnist-unbalanced-32-none-90s-rehearsal.json").read_text())
    assert figures["arm"] == figures["planned_arm"] == "none" and figures["judged_per_rung"] == [1]
    assert figures["winner_start"].startswith("start-")  # arm none trains a portfolio start, nothing else
    assert figures["ensemble_holdout_accuracy"] is None  # one configuration judged: one final model, no ensemble
    # the benchmark's own reading of the hold-out and the model file scores the winner as its export did
    (alone,) = figures["ensemble_prefix_holdout_accuracy"]
    assert alone == pytest.approx(figures["winner_holdout_accuracy"], abs=0.005)
    # mirrored digits are other digits: the model trained on no mirror, so --test-time-flips auto exports it as it is
    assert figures["final_models"][0]["trained_flip"] in (None, "none") and figures["test_time_flips"] == [[]]
    assert figures["flip_tta_holdout_accuracy"] == figures["ensemble_prefix_holdout_accuracy"]
    assert figures["data"]["holdout_images"] == 311
    # it learned: the largest class is under a third of the hold-out (600 of 1,944 digits before the splits)
    assert figures["winner_holdout_accuracy"] > 0.6, figures
    assert "test accuracy" in (tmp_path / "rehearsal" / "run.log").read_text()  # the copy's test: the hold-out


def test_the_comparison_table_pairs_each_arm_with_the_baseline_seed_by_seed():
    from benchmarks.budget import compare_table

    def run(arm, seed, accuracy):
        figures = {"winner_holdout_accuracy": accuracy, "wall_vs_budget": 0.99}
        return {"dataset": "digits", "arm": arm, "study_seed": seed, **figures}

    runs = [run("portfolio+search", 1, 0.90), run("none", 1, 0.88), run("portfolio+search", 2, 0.94), run("none", 2, 0.90)]
    baseline, none = compare_table(runs, "portfolio+search")
    assert (baseline["mean"], baseline["min"], baseline["max"]) == (pytest.approx(0.92), 0.90, 0.94)
    assert baseline["minus_portfolio+search"] is None and baseline["sd"] == pytest.approx(0.0283, abs=1e-4)
    gain, spread = none["minus_portfolio+search"]  # seed by seed: -0.02 and -0.04
    assert gain == pytest.approx(-0.03) and spread == pytest.approx(0.01414, abs=1e-4) and none["runs"] == 2


class _Recorder:
    """A parameter source that records every range a space asks for and answers with its lowest value."""

    def __init__(self):
        self.ranges = {}

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.ranges[name] = ("int", low, high, step, log)
        return low

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.ranges[name] = ("float", low, high, step, log)
        return low

    def suggest_categorical(self, name, choices):
        self.ranges[name] = ("categorical", frozenset(choices))
        return choices[0]


def test_the_kerastuner_peer_declares_the_knobs_and_ranges_of_the_cnn_cpu_space():
    keras_tuner = pytest.importorskip("keras_tuner", reason="pip install keras-tuner (the test extra)")
    from benchmarks.peer import CnnCpuHyperModel
    from search_spaces.cnn_cpu import SPACE
    from tuner.core.traits import DataTraits

    recorder = _Recorder()  # balanced data, the recipe fixed: as a budget run draws cnn_cpu
    SPACE.suggest(recorder, (8, 8, 1), 10, 10, DataTraits(recipe_fixed=True))
    hp = keras_tuner.HyperParameters()
    model = CnnCpuHyperModel((8, 8, 1), 10, 766).build(hp)
    declared = {}
    for knob in hp.space:
        config, kind = knob.get_config(), type(knob).__name__
        log = config.get("sampling") == "log"
        if kind == "Int":
            declared[knob.name] = ("int", config["min_value"], config["max_value"], config["step"] or 1, log)
        elif kind == "Float":
            declared[knob.name] = ("float", config["min_value"], config["max_value"], config["step"], log)
        elif kind == "Boolean":
            declared[knob.name] = ("categorical", frozenset((False, True)))
        else:
            declared[knob.name] = ("categorical", frozenset(config["values"]))
    assert declared == recorder.ranges
    assert declared["learning_rate"] == ("float", 3e-4, 3e-3, None, True)  # spelled out once, in case both drift
    assert declared["batch_size"] == ("categorical", frozenset((64, 128, 256)))
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 10)


@pytest.mark.slow
@fills_a_wall_clock
def test_the_kerastuner_peer_learns_within_its_budget_on_the_rehearsal_hold_out(tmp_path):
    pytest.importorskip("keras_tuner", reason="pip install keras-tuner (the test extra)")
    import time

    from benchmarks.budget import PEER_ARM, compare_table
    from benchmarks.peer import run_peer

    budget, seed = 75.0, 2
    started = time.time()
    figures = run_peer("digits", budget, seed, tmp_path / "peer", None)
    wall = time.time() - started
    assert figures["wall_seconds"] <= wall <= budget + 5  # the data's copy, the search, the final training, the hold-out
    assert figures["trials"] >= 2 and figures["winner_final_epochs"] >= 1
    assert figures["winner_holdout_accuracy"] > 0.5  # chance is 0.1
    assert json.loads((tmp_path / "peer" / "figures.json").read_text()) == json.loads(json.dumps(figures))
    study, overrides = _source("digits", None, None)
    data, rehearsal = _rehearsal_data(study, {**overrides, "seed": seed}, tmp_path / "tuner-copy")  # as rehearse does
    assert figures["data"] == data and data["holdout_images"] == 479
    with np.load(rehearsal["dataset"]) as tuners, np.load(tmp_path / "peer" / "data" / "data.npz") as peers:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(peers[key], tuners[key])
    tuner_run = {"dataset": "digits", "arm": "portfolio+search", "study_seed": seed, "winner_holdout_accuracy": 0.9}
    _, peer_row = compare_table([{**tuner_run, "wall_vs_budget": 0.99}, figures], "portfolio+search")
    assert peer_row["arm"] == PEER_ARM and peer_row["minus_portfolio+search"][0] == pytest.approx(
        figures["winner_holdout_accuracy"] - 0.9
    )
