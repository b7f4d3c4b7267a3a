"""One module ranks trials: feasibility, the single best, the Pareto front, baselines (no training here)."""

import optuna
from optuna.trial import TrialState, create_trial

from tuner.results import ranking
from tuner.results.summary import render


def _trial(
    values, baseline=None, feasible=True, rung=None, state=TrialState.COMPLETE, config=None, images=None, predicted=None
):
    attrs = {
        "val_accuracy_mean": values[0],
        "val_accuracy_std": 0.01,
        "n_folds": 2,
        "seconds_per_fold": 1.0,
        "trainable_params": 1000,
        "overfit_gap": 0.1,
        "seconds": 2.0,
        "feasible": feasible,
    }
    if baseline:
        attrs["baseline"] = baseline
    if rung is not None:
        attrs["rung"] = rung
    if config is not None:
        attrs["config"] = config
    if predicted is not None:
        attrs["predicted_accuracy"] = predicted
    if images:
        attrs["fidelity"] = {"images": images, "epochs": 10, "validation_images": 2000}
    if state != TrialState.COMPLETE:
        return create_trial(state=state, user_attrs={"stopped": "pruned at fold 1, epoch 1"})
    return create_trial(values=list(values), user_attrs=attrs)


def test_single_objective_ranks_feasible_trials_by_value():
    study = optuna.create_study(direction="maximize")
    for trial in (
        _trial([0.80], "seed000-v1"),
        _trial([0.95], feasible=False),
        _trial([0.90]),
        _trial([0.85]),
        _trial([0.0], state=TrialState.PRUNED),
    ):
        study.add_trial(trial)
    assert [t.number for t in ranking.best_trials(study, top=3)] == [2, 3, 0]  # the infeasible 0.95 never ranks
    assert [t.number for t in ranking.best_trials(study)] == [2]
    assert ranking.best_baseline(study).number == 0
    assert [t.number for t in ranking.infeasible(study)] == [1]
    text = render(study)
    assert "Trial 2: value=0.9" in text and "best vs seed000-v1: +10.0 points" in text


def test_a_budget_studys_higher_rung_outranks_a_higher_value_at_a_cheaper_one():
    study = optuna.create_study(direction="maximize")
    for trial in (_trial([0.91], rung=0), _trial([0.89], rung=2), _trial([0.90], rung=2), _trial([0.93], rung=1)):
        study.add_trial(trial)
    assert [t.number for t in ranking.best_trials(study, top=4)] == [2, 1, 3, 0]


def test_a_budget_study_ranks_within_a_rung_by_the_accuracy_predicted_for_all_its_images_and_counts_a_config_once():
    """The strategy stores each judgement's prediction (tuner.budget.rung_search); ranking reads it, not the value."""
    study = optuna.create_study(direction="maximize")
    for trial in (
        _trial([0.80], config=0, rung=0, images=1000, predicted=0.80),  # steep: 0.80 -> 0.88 (error 0.20 -> 0.12)
        _trial([0.86], "seed000-v1", config=1, rung=0, images=1000, predicted=0.86),  # flat: 0.86 -> 0.89
        _trial([0.88], config=0, rung=1, images=3000, predicted=0.958),  # extrapolated to 60,000 images
        _trial([0.89], "seed000-v1", config=1, rung=1, images=3000, predicted=0.943),
    ):
        study.add_trial(trial)
    assert [t.number for t in ranking.best_trials(study, top=4)] == [2, 3]  # each configuration once, by prediction
    assert ranking.best_baseline(study).number == 3


def test_no_feasible_trial_means_no_best():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial([0.9], feasible=False))
    assert ranking.best_trials(study) == [] and "No feasible trial yet." in render(study)


def test_front_skips_infeasible_trials_and_names_who_dominates():
    study = optuna.create_study(directions=["maximize", "minimize"])

    def add(accuracy, seconds, baseline, gap_excess):
        attrs = {
            "val_accuracy_mean": accuracy,
            "seconds_per_fold": seconds,
            "trainable_params": 1000,
            "feasible": gap_excess <= 0,
            "baseline": baseline,
            "overfit_gap": 0.1 + gap_excess,
        }
        study.add_trial(
            create_trial(values=[accuracy, seconds], user_attrs=attrs, system_attrs={"constraints:overfit_gap": gap_excess})
        )

    add(0.95, 10.0, "slow-accurate", -0.1)
    add(0.90, 2.0, "fast", -0.1)
    add(0.89, 5.0, "dominated", -0.1)
    add(0.99, 1.0, "overfit", 0.2)  # would dominate everything, but breaks the constraint
    front = ranking.pareto_front(study)
    assert [t.user_attrs["baseline"] for t in front] == ["slow-accurate", "fast"]
    assert ranking.best_trials(study, top=1) == front[:1]
    trials = study.trials
    assert ranking.standing(trials[0], front, study.directions) == "on the front"
    assert ranking.standing(trials[2], front, study.directions) == "dominated by trial 1 (fast)"
    assert ranking.standing(trials[3], front, study.directions).startswith("infeasible")
    assert ranking.dominates(trials[1], trials[2], study.directions)
    assert not ranking.dominates(trials[0], trials[1], study.directions)
