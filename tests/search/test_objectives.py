"""Seed 000's criteria as objectives: accuracy and time or size, overfitting as a constraint.

One two-objective study on digits is run twice through the real CLI (the
second run resumes it) and shared by the tests below; the rules themselves
(median pruning on curves, Pareto standing) are also checked on hand-made
Optuna trials, without training.
"""

import optuna
import pytest
from conftest import assert_one_line_error, run_tuner
from optuna.trial import TrialState

from tuner.results import ranking
from tuner.search.curve_pruning import CurveMedianRule

# seed 5 draws cheap models (or unbuildable ones, rejected at once) in both runs; subset 600 keeps epochs short
STUDY = ["digits", "--folds", "2", "--epochs", "2", "--subset", "600", "--seed", "5", "--pruner", "median", "--no-progress"]
TWO_OBJECTIVE = [*STUDY, "--objectives", "accuracy,params", "--baselines", "seed000-VII,seed000-VIII,seed000-v1,seed000-v3"]


def _study(url, name="digits"):
    return optuna.load_study(study_name=name, storage=url)


def _sampled(trials):
    return [t.params for t in trials if "baseline" not in t.user_attrs and t.params.get("activation") != "sigmoid"]


@pytest.fixture(scope="module")
def two_objective_study(tmp_path_factory):
    """4 baselines + 2 sampled trials; then a hopeless trial and 2 sampled ones in a resumed run."""
    folder = tmp_path_factory.mktemp("objectives")
    url = f"sqlite:///{folder / 'study.db'}"
    first = run_tuner(*TWO_OBJECTIVE, "--trials", "6", "--storage", url, cwd=folder)
    assert first.returncode == 0, first.stderr
    first_sampled = _sampled(_study(url).trials)
    # a hopeless model (sigmoid, tiny learning rate) stays near chance: the median rule must stop it
    study = _study(url)
    study.enqueue_trial({**study.trials[0].params, "activation": "sigmoid", "learning_rate": 1e-4, "momentum": 0.0})
    second = run_tuner(*TWO_OBJECTIVE, "--trials", "3", "--storage", url, cwd=folder)
    assert second.returncode == 0, second.stderr
    report = run_tuner("report", "digits", "--storage", url, cwd=folder)
    assert report.returncode == 0, report.stderr
    return {"url": url, "folder": folder, "first_sampled": first_sampled, "report": report.stdout}


@pytest.mark.slow
def test_two_objective_study_completes_with_both_values(two_objective_study):
    study = _study(two_objective_study["url"])
    assert study.metric_names == ["cv_val_accuracy", "trainable_params"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 5 and not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    for trial in complete:
        assert trial.values == [trial.user_attrs["val_accuracy_mean"], trial.user_attrs["trainable_params"]]
        assert trial.user_attrs["feasible"] is True  # no --max-gap: every complete trial is feasible
    assert max(t.values[0] for t in complete) > 0.5  # learning happened (chance is 0.1)


@pytest.mark.slow
def test_hopeless_trial_is_pruned_on_its_accuracy_curve(two_objective_study):
    trials = _study(two_objective_study["url"]).trials
    hopeless = [t for t in trials if t.params.get("activation") == "sigmoid" and t.params["learning_rate"] == 1e-4]
    assert len(hopeless) == 1 and hopeless[0].state == TrialState.PRUNED
    # warm-up is one whole fold (2 epochs): the first decision is at fold 2, epoch 1 (step 2)
    assert hopeless[0].user_attrs["stopped"].startswith("pruned at fold 2, epoch 1")
    assert "below the median" in hopeless[0].user_attrs["stopped"]
    assert sorted(int(step) for step in hopeless[0].user_attrs["val_accuracy_curve"]) == [0, 1, 2]


@pytest.mark.slow
def test_report_prints_the_front_and_where_vii_and_viii_stand(two_objective_study):
    report = two_objective_study["report"]
    study = _study(two_objective_study["url"])
    front = ranking.pareto_front(study)
    assert len(front) >= 2
    assert f"## Pareto front (cv_val_accuracy up, trainable_params down): {len(front)} trials" in report  # at least two
    table = report.split("## Pareto front")[1].split("## Where")[0]
    assert [int(line.split()[0]) for line in table.splitlines()[3:] if line.strip()] == [t.number for t in front]
    standings = report.split("## Where the seed baselines stand")[1]
    for name in ("seed000-VII", "seed000-VIII"):
        trial = next(t for t in study.trials if t.user_attrs.get("baseline") == name)
        line = next(line for line in standings.splitlines() if line.startswith(name + " "))
        assert f"{trial.user_attrs['val_accuracy_mean'] * 100:.3f}%" in line  # accuracy
        assert f"{trial.user_attrs['seconds_per_fold']:.2f}s" in line  # time per fold
        on_front = any(t.number == trial.number for t in front)
        assert ("on the front" in line) == on_front
        assert on_front or "dominated by trial" in line


@pytest.mark.slow
def test_a_resumed_study_draws_new_parameters(two_objective_study):
    second_sampled = _sampled(_study(two_objective_study["url"]).trials)[len(two_objective_study["first_sampled"]) :]
    assert two_objective_study["first_sampled"] and second_sampled
    assert not [params for params in second_sampled if params in two_objective_study["first_sampled"]]


@pytest.mark.slow
def test_changing_objectives_of_a_study_is_refused(two_objective_study):
    url = two_objective_study["url"]
    before = [(t.number, t.state) for t in _study(url).trials]
    result = run_tuner(
        *STUDY,
        "--objectives",
        "accuracy,time",
        "--trials",
        "1",
        "--storage",
        url,
        cwd=two_objective_study["folder"],
        timeout=120,
    )
    assert_one_line_error(result, "was created with objectives=['accuracy', 'params']")
    assert [(t.number, t.state) for t in _study(url).trials] == before


@pytest.mark.slow
def test_trials_over_max_gap_are_recorded_infeasible(tmp_path, sqlite_url):
    # After 2 epochs the mean training loss (averaged over each epoch) is still above the validation
    # loss, so gaps are negative (about -0.2 to -0.45 here); a limit of -1 is surely broken.
    result = run_tuner(
        *STUDY,
        "--objectives",
        "accuracy,time",
        "--max-gap",
        "-1",
        "--pruner",
        "none",
        "--baselines",
        "seed000-VII,seed000-VIII",
        "--trials",
        "2",
        "--storage",
        sqlite_url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = _study(sqlite_url)
    assert study.metric_names == ["cv_val_accuracy", "seconds_per_fold"]
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        gap = trial.user_attrs["overfit_gap"]
        assert gap > -1
        assert trial.constraints == {"overfit_gap": pytest.approx(gap + 1)}
        assert trial.user_attrs["feasible"] is False
        assert trial.values == [trial.user_attrs["val_accuracy_mean"], trial.user_attrs["seconds_per_fold"]]
    assert study.best_trials == []  # infeasible trials are never Pareto-optimal
    assert "Overfitting constraint: val loss - train loss <= -1; 2 of 2 complete trials infeasible" in result.stdout
    assert "seed000-VII" in result.stdout and "infeasible (overfitting gap" in result.stdout


@pytest.mark.slow
def test_settings_that_cannot_work_are_refused_in_one_line(tmp_path):
    cases = [
        (["digits", "--sampler", "cmaes", "--objectives", "accuracy,time"], "cmaes sampler cannot optimise two objectives"),
        (["digits", "--sampler", "cmaes", "--max-gap", "0.1"], "cmaes sampler cannot"),
        (["digits", "--objectives", "time"], "bad objectives 'time'"),
        (["digits", "--objectives", "accuracy,time,params"], "bad objectives"),
        (["digits", "--max-gap", "nan"], "max_gap must be a finite number"),
        (["digits", "--max-gap", "wide"], "invalid float value: 'wide'"),
    ]
    for args, fragment in cases:
        assert_one_line_error(run_tuner(*args, cwd=tmp_path, timeout=60), fragment)
    assert not (tmp_path / "tuner.db").exists()  # refused before any study was made


def test_curve_median_rule_follows_optunas_median_pruner():
    rule = CurveMedianRule(n_startup_trials=2, n_warmup_steps=2)
    completed = [{0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.7, 1: 0.8, 2: 0.9}]
    assert rule.reason_to_stop({0: 0.1, 1: 0.1}, 1, completed) is None  # still warming up
    assert rule.reason_to_stop({0: 0.1, 1: 0.1, 2: 0.1}, 2, completed[:1]) is None  # too few completed trials
    assert "below the median 0.8000 of 2" in rule.reason_to_stop({0: 0.1, 1: 0.1, 2: 0.1}, 2, completed)
    assert rule.reason_to_stop({0: 0.85, 1: 0.1, 2: 0.1}, 2, completed) is None  # best so far counts
    assert rule.reason_to_stop({3: 0.0}, 3, completed) is None  # nobody else reached this step


@pytest.mark.slow
def test_accuracy_and_latency_study_puts_batch1_latency_on_the_front(tmp_path, sqlite_url):
    """The most accurate model under N ms: latency is measured after training and read off the front."""
    result = run_tuner(
        *STUDY, "--objectives", "accuracy,latency", "--baselines", "seed000-v1,seed000-VIII", "--trials", "3",
        "--storage", sqlite_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    study = _study(sqlite_url)
    assert study.metric_names == ["cv_val_accuracy", "batch1_latency_ms"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 2
    for trial in complete:
        accuracy, latency = trial.values
        assert accuracy == trial.user_attrs["val_accuracy_mean"]
        assert latency == trial.user_attrs["latency_ms"] and 0 < latency < 1000
    front = ranking.pareto_front(study)
    assert "## Pareto front (cv_val_accuracy up, batch1_latency_ms down)" in result.stdout
    table = result.stdout.split("## Pareto front")[1].split("## Where")[0]
    assert "batch-1" in table.splitlines()[2]
    for trial in front:
        line = next(line for line in table.splitlines() if line.split() and line.split()[0] == str(trial.number))
        assert f"{trial.values[1]:.3f}ms" in line
