"""The narrow CPU space (cnn_cpu) stays small: every draw builds, and none is a multi-hour model."""

import optuna
import pytest
from conftest import requires_fashion, run_tuner
from optuna.trial import TrialState

import search_spaces
from tuner.core.errors import TunerError
from tuner.core.study_file import load_study_config
from tuner.core.traits import DataTraits
from tuner.data import load_dataset
from tuner.search.objective import spec_for_params


def test_every_draw_is_buildable_and_cheap():
    space = search_spaces.get_space("cnn_cpu")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    costs = []
    for _ in range(50):
        trial = study.ask()
        spec = space.suggest(trial, (28, 28, 1), 10, 6)
        assert spec.model.problems() == []
        costs.append(spec.model.multiply_adds())
        study.tell(trial, 0.5)
    assert max(costs) <= 50_000_000  # at most 41 M conv (48-48-96-96) and the dense head; the default space reaches billions
    assert min(costs) < max(costs)  # it does search


def test_the_hour_study_is_a_budget_study_on_the_default_space():
    config = load_study_config("fashion-hour")
    assert (config.budget, config.space, config.subset) == (3600, "cnn", 0)


def test_its_baselines_fit_small_images():
    space = search_spaces.get_space("cnn_cpu")
    digits = load_dataset("digits")
    for params in space.baselines.values():
        assert spec_for_params(space, {**params, "epochs": 2}, digits, 2).model.problems() == []


@pytest.mark.slow
@requires_fashion()
def test_the_space_runs_on_fashion(tmp_path, sqlite_url):
    """Chosen by name on a study's command line; Fashion-MNIST's traits (a flip) reach it and are honoured."""
    result = run_tuner(
        "fashion",
        "--space",
        "cnn_cpu",
        "--trials",
        "2",
        "--subset",
        "1500",
        "--epochs",
        "2",
        "--folds",
        "2",
        "--pruner",
        "none",
        "--storage",
        sqlite_url,
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="fashion", storage=sqlite_url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert {t.user_attrs.get("baseline") for t in complete} == {"bn-32-32-64-64", "bn-32-64-dropout"}
    assert max(t.value for t in complete) > 0.5  # ten classes: chance is 0.1


def test_knobs_it_does_not_tune_are_refused_by_name():
    space = search_spaces.get_space("cnn_cpu")
    trial = optuna.create_study().ask()
    with pytest.raises(TunerError, match='does not tune image_sizes.*space = "cnn"'):
        space.suggest(trial, (28, 28, 1), 10, 6, traits=DataTraits(image_sizes=(28, 32)))
    weighted = optuna.create_study().ask()
    spec = space.suggest(weighted, (28, 28, 1), 10, 6, traits=DataTraits(class_weights=True))
    assert spec.train.class_weight in {"none", "max_over_count", "total_over_classes"}
    assert weighted.params["class_weight"] == spec.train.class_weight  # the trait is a knob this space does tune
