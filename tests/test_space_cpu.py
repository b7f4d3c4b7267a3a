"""The one-hour CPU space stays small: every draw builds, and none is a multi-hour model."""

import optuna

import search_spaces
from tuner.config import load_study_config
from tuner.data import load_dataset
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
