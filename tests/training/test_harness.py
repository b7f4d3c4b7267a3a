"""The K-fold harness trains for real, reports one global step across folds, and stops on NaN."""

import gc

import numpy as np
import pytest

from search_spaces import cnn
from tuner.data import load_dataset
from tuner.search.objective import spec_for_params
from tuner.training.harness import NonFiniteLoss, cross_validate, fold_indices


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _v1(dataset, epochs, **changes):
    return spec_for_params(cnn.SPACE, {**cnn.BASELINES["seed000-v1"], "epochs": epochs, **changes}, dataset, epochs)


def test_folds_are_stratified_repeated_and_disjoint(digits):
    splits = fold_indices(digits.y_train, 3, 2, seed=7)
    assert len(splits) == 6
    for train, val in splits:
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(digits.y_train)
        expected = np.bincount(digits.y_train, minlength=10) / 3
        assert np.all(np.abs(np.bincount(digits.y_train[val], minlength=10) - expected) <= 1)
    assert not np.array_equal(splits[0][1], splits[3][1])  # the repeat reshuffles
    assert fold_indices(digits.y_train, 3, 2, seed=7) is splits  # computed once per process


@pytest.mark.slow
def test_learning_happens_and_steps_are_global(digits):
    steps = []
    result = cross_validate(
        _v1(digits, 3),
        digits.x_train,
        digits.y_train,
        folds=2,
        seed=1,
        max_epochs=3,
        reporter=lambda step, value: steps.append((step, value)),
    )
    assert [s for s, _ in steps] == [0, 1, 2, 3, 4, 5]  # fold 1 continues at step 3, never restarts at 0
    assert result.mean_val_accuracy > 0.85  # well above chance (0.1) after 3 epochs
    first_fold = [v for s, v in steps[:3]]
    second_fold = [v for s, v in steps[3:]]
    assert second_fold[0] < first_fold[-1]  # fold 2 starts from fresh weights, not fold 1's
    figures = result.figures()
    assert figures.trainable_params == 30_230
    assert figures.overfit_gap == pytest.approx(figures.val_loss_mean - figures.train_loss_mean)
    assert all(1 <= e <= 3 for e in figures.best_epochs)
    assert 0 < result.train_seconds_per_image < result.figures().seconds_per_image  # training alone is the cheaper part


@pytest.mark.slow
def test_nan_loss_stops_with_fold_and_epoch(digits):
    x = digits.x_train * np.float32(1e38)  # activations overflow to inf, the loss to NaN
    with pytest.raises(NonFiniteLoss, match="fold 0, epoch 1"):
        cross_validate(_v1(digits, 2), x, digits.y_train, folds=2, max_epochs=2)


@pytest.mark.slow
def test_early_stopping_ends_a_fold_early(digits):
    spec = _v1(digits, 30, learning_rate=0.2)
    result = cross_validate(spec, digits.x_train, digits.y_train, folds=2, max_epochs=30, early_stopping_patience=1)
    assert all(fold.epochs_run < 30 for fold in result.folds)


@pytest.mark.slow
def test_reporter_can_stop_a_trial(digits):
    class Stop(Exception):
        pass

    def reporter(step, value):
        if step == 1:
            raise Stop

    with pytest.raises(Stop):
        cross_validate(_v1(digits, 3), digits.x_train, digits.y_train, folds=2, max_epochs=3, reporter=reporter)


@pytest.mark.slow
def test_a_cheap_fidelity_trains_one_fold_on_part_of_it_and_validates_once(digits):
    steps = []
    result = cross_validate(
        _v1(digits, 3),
        digits.x_train,
        digits.y_train,
        folds=4,
        seed=1,
        max_epochs=3,
        max_folds=1,
        train_size=300,
        validate_last_only=True,
        reporter=lambda step, value: steps.append(step),
    )
    (fold,) = result.folds
    assert fold.train_images == 300 and fold.epochs_run == 3
    assert steps == [2]  # validated once, after the last epoch
    assert len(fold.history["val_accuracy"]) == 1 and len(fold.history["accuracy"]) == 3
    assert fold.val_accuracy > 0.3  # 300 images, 3 epochs: learning happened (chance is 0.1)


@pytest.mark.slow
@pytest.mark.tensorflow_only  # TensorFlow's traced graphs and gradient registry
def test_a_trial_leaves_no_traced_graph_or_gradient_behind_finished_or_stopped(digits):
    """Each trained model used to stay alive through TensorFlow's gradient registry (tuner.training.session)."""
    from tuner.training.session import _gradient_registry, traced_graphs

    before, graphs_before = set(_gradient_registry()), {id(g) for g in traced_graphs()}  # (other tests' models)
    cross_validate(_v1(digits, 1), digits.x_train, digits.y_train, folds=2, max_epochs=1)

    def stop(step, value):
        raise KeyboardInterrupt  # as Ctrl-C or a pruner would, mid-trial

    stopped = False
    try:
        cross_validate(_v1(digits, 2), digits.x_train, digits.y_train, folds=2, max_epochs=2, reporter=stop)
    except KeyboardInterrupt:  # (caught here, so that no traceback keeps the trial's frames alive)
        stopped = True
    gc.collect()
    assert stopped and {id(g) for g in traced_graphs()} <= graphs_before
    assert set(_gradient_registry()) == before
    # what was alive before the first trial (Keras' modules among it) is frozen: collections skip it
    import keras

    assert gc.get_freeze_count() > 0 and id(vars(keras)) not in {id(o) for o in gc.get_objects()}
