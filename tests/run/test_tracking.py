"""--mlflow-tracking-uri: each finished trial is one MLflow run, read back with MLflow's own client.

A missing mlflow package or a store MLflow refuses ends the run in one line,
exit 2, before any training.
"""

import subprocess
import sys

import optuna
import pytest
from conftest import assert_one_line_error, run_tuner, tuner_env
from optuna.trial import TrialState

mlflow = pytest.importorskip("mlflow", reason="pip install 'tuner[mlflow]' to test experiment tracking")

STUDY = ["digits", "--folds", "2", "--epochs", "2", "--subset", "600", "--no-progress", "--storage", "sqlite:///a.db"]


@pytest.mark.slow
def test_each_finished_trial_is_one_mlflow_run_with_its_params_and_values(tmp_path):
    result = run_tuner(*STUDY, "--trials", "3", "--mlflow-tracking-uri", "local", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{tmp_path / 'a.db'}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 3 and any(t.state == TrialState.COMPLETE for t in finished)  # metrics to check
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits")  # the study's name
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted(str(t.number) for t in finished)
    for trial in finished:
        run = runs[str(trial.number)]
        assert run.data.params == {key: str(value) for key, value in trial.params.items()}
        assert run.data.tags["state"] == trial.state.name
        if trial.state == TrialState.COMPLETE:
            assert run.data.metrics == {"cv_val_accuracy": trial.value}
            assert run.data.tags["seed"] == str(trial.user_attrs["seed"])


@pytest.mark.slow
def test_missing_mlflow_names_the_extra_before_any_training(tmp_path):
    # `python -m tuner` in an environment where `import mlflow` fails, as it does where the extra is not installed
    blocked = "import runpy, sys; sys.modules['mlflow'] = None; runpy.run_module('tuner', run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", blocked, *STUDY, "--trials", "1", "--mlflow-tracking-uri", "local"],
        cwd=tmp_path,
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(result, "MLflow tracking needs the mlflow extra", "pip install 'tuner[mlflow]'")
    assert (
        not (tmp_path / "a.db").exists()
        or not optuna.load_study(study_name="digits", storage=f"sqlite:///{tmp_path / 'a.db'}").trials
    )


@pytest.mark.slow
def test_a_store_mlflow_refuses_is_one_line_naming_the_variable(tmp_path):
    # MLflow 3 refuses its ./mlruns file store by default; the environment variable alone turns tracking on
    result = run_tuner(*STUDY, "--trials", "1", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": "./mlruns"}, timeout=300)
    assert_one_line_error(result, "cannot use the MLflow tracking URI ./mlruns", "$MLFLOW_TRACKING_URI", "'local'")
    assert not (tmp_path / "a.db").exists()
