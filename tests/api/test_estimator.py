"""`CNNClassifier` behaves as a scikit-learn estimator: parameters, clone, fit/predict/score, cross_val_score."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

from tuner.api.estimator import CNNClassifier, as_images
from tuner.core.errors import TunerError


def test_its_parameters_round_trip_and_clone_keeps_them():
    estimator = CNNClassifier(budget=None, trials=3, folds=2, epochs=2, seed=7)
    params = estimator.get_params()
    assert params["trials"] == 3 and params["folds"] == 2 and params["seed"] == 7 and params["budget"] is None
    copy = clone(estimator.set_params(seed=8))
    assert copy.get_params()["seed"] == 8 and copy is not estimator


def test_flat_rows_become_square_images_or_say_what_to_give():
    assert as_images(np.zeros((5, 64)), None).shape == (5, 8, 8)
    assert as_images(np.zeros((5, 12)), (3, 4)).shape == (5, 3, 4)
    with pytest.raises(TunerError, match="image_shape"):
        as_images(np.zeros((5, 12)), None)


@pytest.mark.slow
def test_cross_val_score_fits_independent_copies_that_learned(tmp_path, monkeypatch):
    from sklearn.model_selection import cross_val_score

    monkeypatch.chdir(tmp_path)
    digits = load_digits()
    rows = np.random.default_rng(0).permutation(len(digits.target))[:900]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    x, labels = digits.data[rows], names[digits.target[rows]]  # labels of any kind, rows of 64 values
    estimator = CNNClassifier(budget=None, trials=1, folds=2, epochs=4)
    scores = cross_val_score(estimator, x, labels, cv=2)
    assert len(scores) == 2 and scores.min() > 0.4, scores  # chance is 0.1
    fitted = estimator.fit(x, labels)
    assert set(fitted.predict(x[:20])) <= set(labels)  # the labels it was given, decoded
    probabilities = fitted.predict_proba(x[:20])
    assert probabilities.shape == (20, 10) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert not (tmp_path / "tuner.db").exists()  # each fit tuned in a folder of its own
