"""The CNN space: conditional knobs, seed baselines, and never an unbuildable model."""

import optuna
import pytest

from search_spaces import cnn, get_space
from tuner.core.errors import TunerError
from tuner.core.traits import DataTraits
from tuner.search.objective import drawn_params, spec_for_params
from tuner.training.models import build_model


@pytest.mark.parametrize("name", sorted(cnn.BASELINES))
def test_every_seed_baseline_is_expressible(name):
    params = {**cnn.BASELINES[name], "epochs": 10}
    trial = optuna.trial.FixedTrial(params)
    spec = cnn.SPACE.suggest(trial, (28, 28, 1), 10, 10)
    assert not spec.model.problems()
    # every parameter of the baseline was actually used: nothing silently ignored
    used = optuna.create_study()
    used.enqueue_trial(params)
    t = used.ask()
    cnn.SPACE.suggest(t, (28, 28, 1), 10, 10)
    assert set(t.params) == set(params), set(params) ^ set(t.params)


def test_baseline_models_match_the_seed_reports():
    def params_of(name):
        return build_model(
            spec_for_params(cnn.SPACE, {**cnn.BASELINES[name], "epochs": 1}, _shape28(), 1).model
        ).count_params()

    assert params_of("seed001") == 964_498  # seed 001 reports 964,498 parameters
    assert params_of("seed003-original") == 1_199_882  # seed 003: 1,199,882
    assert params_of("seed003-improved") == 72_970  # seed 003: 72,970


class _shape28:
    input_shape, num_classes = (28, 28, 1), 10


def test_conditional_parameters_only_when_they_apply():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        spec = cnn.SPACE.suggest(trial, (28, 28, 1), 10, 6)
        params = trial.params
        if not params["head_dropout"]:
            assert "head_dropout_rate" not in params
        if params["optimizer"] != "sgd":
            assert "momentum" not in params
        if params["lr_schedule"] != "exponential":
            assert "lr_decay_rate" not in params
        if not any(b.pooling for b in spec.model.blocks):
            assert "pool_size" not in params
        assert not any(k.endswith(f"_{params['n_blocks']}") and k.startswith("filters") for k in params)
        assert 3 <= spec.train.epochs <= 6
        study.tell(trial, 0.0)


def test_random_points_either_build_or_are_rejected_with_a_reason():
    """No point of the space reaches Keras and fails there: problems() catches it first."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    rejected = built = 0
    for _ in range(40):
        trial = study.ask()
        spec = cnn.SPACE.suggest(trial, (8, 8, 1), 10, 2)
        if spec.model.problems():
            rejected += 1
            with pytest.raises(TunerError, match="cannot build this architecture"):
                build_model(spec.model)
        else:
            build_model(spec.model)
            built += 1
        study.tell(trial, 0.0)
    assert rejected and built  # on 8x8 images both happen


def test_unknown_space():
    with pytest.raises(TunerError, match="unknown search space 'resnet'"):
        get_space("resnet")


def test_multiply_adds_match_the_built_models_conv_and_dense_work():
    """The cost a budget plans with: for seed 000's v1, conv 26x26x32x9 + dense 5408x100 + 100x10."""
    spec = spec_for_params(cnn.SPACE, {**cnn.BASELINES["seed000-v1"], "epochs": 1}, _shape28(), 1)
    assert spec.model.multiply_adds() == 26 * 26 * 32 * 9 + 13 * 13 * 32 * 100 + 100 * 10


def test_a_start_flips_only_where_the_data_admits_its_flip_and_is_enqueued_as_drawn():
    start = cnn.PORTFOLIO["start-vgg-32-64"]
    assert start["augment_flip"] == "horizontal"
    upside_down_only = DataTraits(augmentations=("vertical", "translation"), recipe_fixed=True)
    spec = spec_for_params(cnn.SPACE, start, _shape28(), 10, upside_down_only)
    assert spec.model.augmentation.flip == "none"  # Optuna's FixedTrial raised ValueError here
    assert spec.model.augmentation.translation == start["augment_translation_rate"]
    drawn = drawn_params(cnn.SPACE, start, _shape28(), 10, upside_down_only)
    assert drawn["augment_flip"] == "none"
    study = optuna.create_study()
    study.enqueue_trial(drawn)
    trial = study.ask()
    assert cnn.SPACE.suggest(trial, (28, 28, 1), 10, 10, upside_down_only) == spec  # the enqueued trial is the start
    assert trial.params == drawn
    no_flips = drawn_params(cnn.SPACE, start, _shape28(), 10, DataTraits(augmentations=("translation",), recipe_fixed=True))
    assert "augment_flip" not in no_flips  # not drawn where no flip keeps labels
    with pytest.raises(ValueError, match="'lr_schedule' is not in the set"):
        spec_for_params(cnn.SPACE, start, _shape28(), 10, DataTraits())  # a start has no recipe: the budget sets it
