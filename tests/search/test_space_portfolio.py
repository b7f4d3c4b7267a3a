"""The cnn space's portfolio file: built for the space as it is now, every start a configuration the space can build.

search_spaces/cnn_portfolio.json is written by benchmarks/portfolio.py; a change to the space's
parameters that the portfolio was not rebuilt for fails here, naming the rebuild command.
"""

import json

import optuna
import pytest

from benchmarks.portfolio import REBUILD, _traits_for_draws, space_fingerprint
from search_spaces import cnn
from tuner.core.traits import DataTraits
from tuner.search.objective import spec_for_params

STORED = json.loads(cnn.PORTFOLIO_FILE.read_text())


def test_the_portfolio_file_was_built_for_the_space_as_it_is_now():
    now = space_fingerprint(cnn.SPACE)
    if STORED["fingerprint"] != now:
        restamp = "" if STORED["matrix"] else " (while it holds the hand-picked starts: build --keep-current)"
        pytest.fail(
            f"search_spaces/cnn_portfolio.json was built for another version of the cnn space (fingerprint "
            f"{STORED['fingerprint']}, now {now}); rebuild it: {REBUILD}{restamp}",
            pytrace=False,
        )


def test_the_space_reads_its_portfolio_from_the_file_in_order():
    assert list(cnn.PORTFOLIO) == [start["name"] for start in STORED["starts"]]
    assert cnn.SPACE.portfolio == {start["name"]: start["params"] for start in STORED["starts"]}
    assert all(name.startswith("start-") for name in cnn.PORTFOLIO)


class _Data:
    def __init__(self, input_shape):
        self.input_shape, self.num_classes = input_shape, 10


@pytest.mark.parametrize("name", list(cnn.PORTFOLIO))
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (64, 64, 3)])  # the suite's smallest, Fashion-MNIST's, largest
def test_every_start_builds_on_the_suites_image_sizes(name, shape):
    params = {**cnn.TRAIT_DEFAULTS, **cnn.PORTFOLIO[name]}
    for traits in (DataTraits(recipe_fixed=True), _traits_for_draws()):  # a budget run's, without and with augmentation
        spec = spec_for_params(cnn.SPACE, params, _Data(shape), 10, traits)
        assert not spec.model.problems(), (name, shape, spec.model.problems())


@pytest.mark.parametrize("name", list(cnn.PORTFOLIO))
def test_every_parameter_of_a_start_is_one_the_space_draws(name):
    study = optuna.create_study()
    study.enqueue_trial({**cnn.TRAIT_DEFAULTS, **cnn.PORTFOLIO[name]})
    trial = study.ask()
    cnn.SPACE.suggest(trial, (28, 28, 1), 10, 10, _traits_for_draws())
    start = cnn.PORTFOLIO[name]
    assert set(start) <= set(trial.params), set(start) - set(trial.params)
    assert {key: trial.params[key] for key in start} == start  # each value in its range or among its choices
