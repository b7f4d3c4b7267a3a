"""`python -m tuner STUDY ...` end to end, as a person runs it: real studies, real training."""

import signal
import subprocess
import sys

import optuna
import pytest
from conftest import requires_fashion, run_tuner, tuner_env
from optuna.trial import TrialState
from polling import wait_for

QUICK = ["--folds", "2", "--epochs", "1", "--no-progress"]
HARNESS_ATTRS = {
    "val_accuracy_mean",
    "val_accuracy_std",
    "val_loss_mean",
    "val_loss_std",
    "train_accuracy_mean",
    "train_loss_mean",
    "overfit_gap",
    "best_epochs",
    "trainable_params",
    "seconds",
    "seed",
    "backend",
}


def _trials(url, name):
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


pytestmark = pytest.mark.slow  # every test here trains real models through the CLI


@requires_fashion()
def test_fashion_quick_study_runs_and_resumes(tmp_path):
    """The issue's own check: 3 trials, then 3 more in the same study.

    Six named baselines (not the default list, whose deliberately overfitting
    64-128-256 model alone cost three quarters of the test): every trial is a cheap seed model.
    """
    baselines = "seed000-v1,seed000-VII,seed001,seed003-original,seed000-v2,seed000-v3"
    args = ["fashion", "--trials", "3", "--folds", "2", "--epochs", "1", "--subset", "1000", "--baselines", baselines]
    first = run_tuner(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    url = f"sqlite:///{tmp_path / 'tuner.db'}"  # the embedded default, in the working directory
    trials = _trials(url, "fashion")
    assert len(trials) >= 3 and sum(t.state.is_finished() for t in trials) == 3
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert finished and set(finished[0].user_attrs) >= HARNESS_ATTRS
    assert max(t.value for t in finished) > 0.4  # one epoch on 500 images learned (chance: 0.1)
    assert finished[0].user_attrs["n_folds"] == 2
    # the seed baselines are enqueued with their names, in the study
    baselines = {t.user_attrs.get("baseline") for t in trials}
    assert {"seed000-v1", "seed000-VII", "seed001", "seed003-original"} <= baselines
    assert "Accuracy: mean=" in first.stdout and "best vs seed000-v1" in first.stdout

    second = run_tuner(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    trials = _trials(url, "fashion")
    assert sum(t.state.is_finished() for t in trials) == 6
    assert len([t for t in trials if t.user_attrs.get("baseline") == "seed000-v1"]) == 1  # not enqueued twice


def test_digits_beats_90_percent_within_a_few_trials(tmp_path, sqlite_url):
    # the study file's 10 epochs; three of the seed models (seed000-overfit alone would take a minute here)
    baselines = "seed000-v1,seed000-v2,seed000-v3"
    result = run_tuner(
        "digits",
        "--trials",
        "3",
        "--folds",
        "2",
        "--baselines",
        baselines,
        "--storage",
        sqlite_url,
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="digits", storage=sqlite_url)
    assert study.best_value > 0.9
    assert "Best trial" in result.stdout and "n=2" in result.stdout  # the best trial's folds


def test_pruned_trial_reports_distinct_steps_across_folds(tmp_path, sqlite_url):
    common = [
        "digits",
        "--storage",
        sqlite_url,
        "--pruner",
        "median",
        "--folds",
        "2",
        "--epochs",
        "2",
        "--baselines",
        "seed000-v1,seed000-v2,seed000-v3,seed000-v4,seed000-v5",
        "--no-progress",
    ]
    assert run_tuner(*common, "--trials", "5", cwd=tmp_path).returncode == 0
    study = optuna.load_study(study_name="digits", storage=sqlite_url)
    # a hopeless model: sigmoid everywhere and a tiny learning rate stays near chance
    study.enqueue_trial({**study.trials[0].params, "activation": "sigmoid", "learning_rate": 1e-4, "momentum": 0.0})
    result = run_tuner(*common, "--trials", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pruned = [t for t in _trials(sqlite_url, "digits") if t.state == TrialState.PRUNED]
    assert len(pruned) == 1
    steps = sorted(pruned[0].intermediate_values)
    assert steps == [0, 1, 2]  # fold 0 epochs 0-1, then fold 1 epoch 0 at step 2: no restart at 0
    assert {step // 2 for step in steps} == {0, 1}  # more than one fold
    assert pruned[0].user_attrs["stopped"].startswith("pruned at fold 2, epoch 1")


def test_ctrl_c_ends_the_trial_cleanly_and_prints_the_summary(tmp_path, sqlite_url):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner",
            "digits",
            "--trials",
            "5",
            "--folds",
            "3",
            "--epochs",
            "200",
            "--pruner",
            "none",
            "--baselines",
            "seed000-v1",
            "--storage",
            sqlite_url,
            "--no-progress",
        ],
        cwd=tmp_path,
        env=tuner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def training() -> bool:  # a trial has reported an epoch (the schema exists once the study does)
        running = [t for t in _trials(sqlite_url, "digits") if t.state == TrialState.RUNNING]
        return bool(running and running[0].intermediate_values)

    wait_for(training, timeout=180, interval=1, what="a trial training")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stdout and "# Study digits" in stdout
    assert "Traceback" not in stderr
    trials = _trials(sqlite_url, "digits")
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert len(interrupted) == 1 and interrupted[0].user_attrs["stopped"] == "interrupted by the user"


def test_report_prints_the_summary_without_training(tmp_path, sqlite_url):
    assert (
        run_tuner(
            "digits", "--trials", "1", "--baselines", "seed000-v1", "--storage", sqlite_url, *QUICK, cwd=tmp_path
        ).returncode
        == 0
    )

    def stored():
        return [(t.number, t.state, t.value, t.datetime_complete) for t in _trials(sqlite_url, "digits")]

    before = stored()
    markdown = tmp_path / "summary.md"
    result = run_tuner("report", "digits", "--storage", sqlite_url, "--markdown", str(markdown), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stored() == before and len(before) == 1  # no trial trained, none changed
    assert "seed000-v1" in result.stdout and "Accuracy: mean=" in result.stdout
    assert markdown.read_text().startswith("# Study digits")


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_both_keras_backends_run_a_study(tmp_path, sqlite_url, backend):
    result = run_tuner(
        "digits",
        "--trials",
        "1",
        "--baselines",
        "seed000-v1",
        "--storage",
        sqlite_url,
        "--folds",
        "2",
        "--epochs",
        "3",
        "--no-progress",
        cwd=tmp_path,
        env={"KERAS_BACKEND": backend},
    )
    assert result.returncode == 0, result.stderr
    trials = [t for t in _trials(sqlite_url, "digits") if t.state == TrialState.COMPLETE]
    assert trials and all(t.user_attrs["backend"] == backend for t in trials)
    assert max(t.value for t in trials) > 0.8  # learning happened on this backend too
