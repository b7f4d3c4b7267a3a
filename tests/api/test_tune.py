"""`tuner.tune`'s bad input is one TunerError line naming the fix, before anything trains."""

import numpy as np
import pytest

import tuner
from tuner.core.errors import TunerError
from tuner.data.arrays import PixelScale, from_arrays


@pytest.mark.parametrize(
    ("data", "settings", "fragment"),
    [
        (42, {}, "data must be arrays, a folder's path or a name"),
        ("no-such-thing", {}, "is neither a folder nor a study"),
        ((np.zeros((20, 8, 8)),), {}, "data must be (x, y)"),
        ((np.zeros((20, 8, 8)), np.arange(19)), {}, "one per image (20)"),
        ((np.zeros((20, 8, 8)), np.full(20, -1)), {}, "whole numbers from 0"),
        ((np.zeros((20, 8)), np.arange(20) % 2), {}, "shape (N, height, width)"),
        ((np.zeros((20, 8, 8)), np.arange(20) % 2), {"folds": 1}, "folds must be"),
        ((np.zeros((20, 8, 8)), np.arange(20) % 2), {"space": 3}, "space must be"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(data, settings, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TunerError) as raised:
        tuner.tune(data, trials=1, progress=False, **settings)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "tuner.db").exists()  # nothing was started


def test_arrays_are_scaled_like_the_images_the_models_saw_and_hold_a_stratified_test_split_out():
    x = np.random.default_rng(0).integers(0, 256, size=(50, 6, 6), dtype=np.uint8)
    y = np.arange(50) % 5
    dataset, scale = from_arrays(x, y)
    assert scale == PixelScale(255.0) and dataset.x_train.shape[1:] == (6, 6, 1)
    assert dataset.x_train.max() <= 1.0 and len(dataset.y_train) == 40
    x_test, y_test = dataset.test_split()
    assert np.bincount(y_test).tolist() == [2] * 5 and dataset.test_split_reads == 1
    assert PixelScale.of(np.array([[0.0, 16.0]])) == PixelScale(16.0)  # scikit-learn's digits: 0-16
    assert PixelScale.of(np.array([[0.0, 0.5]])) == PixelScale(1.0)
