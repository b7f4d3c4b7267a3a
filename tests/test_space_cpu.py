"""The one-hour CPU space stays small: every draw builds, and none is a multi-hour model."""

import optuna
import pytest
from optuna.trial import TrialState

import search_spaces
from conftest import REPO, requires_fashion, run_tuner
from tuner.config import load_study_config
from tuner.data import load_dataset
from tuner.errors import TunerError
from tuner.objective import spec_for_params


def _multiply_adds(spec) -> int:
    """Multiply-adds per image of the conv layers ('same' padding, 2x2 pooling after each block)."""
    height, width, channels = spec.input_shape
    total = 0
    for block in spec.blocks:
        for _ in range(block.convs):
            total += height * width * channels * block.filters * block.kernel_size**2
            channels = block.filters
        height, width = -(-height // 2), -(-width // 2)
    return total


def test_every_draw_is_buildable_and_cheap():
    space = search_spaces.get_space("cnn_cpu")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    costs = []
    for _ in range(50):
        trial = study.ask()
        spec = space.suggest(trial, (28, 28, 1), 10, 6)
        assert spec.model.problems() == []
        costs.append(_multiply_adds(spec.model))
        study.tell(trial, 0.5)
    assert max(costs) <= 50_000_000  # at most 41 M (48-48-96-96); the default space reaches billions
    assert min(costs) < max(costs)  # it does search


def test_hour_study_uses_the_space_and_its_baselines_fit():
    config = load_study_config("fashion-hour")
    assert config.space == "cnn_cpu" and config.timeout and config.subset > 0
    space = search_spaces.get_space(config.space)
    digits = load_dataset("digits")
    for params in space.BASELINES.values():
        assert spec_for_params(space, {**params, "epochs": 2}, digits, 2).model.problems() == []


@requires_fashion()
def test_hour_study_file_runs_on_fashion(tmp_path, sqlite_url):
    """The study file itself, through the CLI, on a small slice: Fashion-MNIST's traits reach this space."""
    study = str(REPO / "studies" / "fashion-hour.toml")
    result = run_tuner(study, "--trials", "2", "--subset", "1500", "--epochs", "2", "--pruner", "none",
                       "--storage", sqlite_url, "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="fashion-hour", storage=sqlite_url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert {t.user_attrs.get("baseline") for t in complete} == {"bn-32-32-64-64", "bn-32-64-dropout"}
    assert max(t.value for t in complete) > 0.5  # ten classes: chance is 0.1


def test_knobs_it_does_not_tune_are_refused_by_name():
    space = search_spaces.get_space("cnn_cpu")
    trial = optuna.create_study().ask()
    with pytest.raises(TunerError, match="does not tune image_sizes.*space = \"cnn\""):
        space.suggest(trial, (28, 28, 1), 10, 6, traits={"image_sizes": [28, 32]})
    spec = space.suggest(optuna.create_study().ask(), (28, 28, 1), 10, 6, traits={"class_weights": True})
    assert spec.train.class_weight in {"none", "max_over_count", "total_over_classes"}
