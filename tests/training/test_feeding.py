"""What `fit` reads: every image once an epoch, reshuffled each epoch by the seed; arrays as they are on JAX."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import tuner_env

from tuner.training.feeding import fit_data, validation_data


def _epochs(dataset, count):
    """The labels of `count` passes over `dataset`, one array per pass."""
    return [np.concatenate([labels.numpy() for _, labels in dataset]) for _ in range(count)]


@pytest.fixture
def arrays():
    x = np.arange(100, dtype="float32").reshape(100, 1, 1, 1)
    return x, np.arange(100, dtype="int32")  # the label names the image


@pytest.mark.tensorflow_only  # the tf.data pipeline is TensorFlow's; other backends: the last test
def test_every_image_once_an_epoch_reshuffled_by_the_seed(arrays):
    x, y = arrays
    first, second = _epochs(fit_data(x, y, 32, seed=3)["x"], 2)
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)  # a new order every epoch
    assert not np.array_equal(first, np.arange(100))
    again, _ = _epochs(fit_data(x, y, 32, seed=3)["x"], 2)
    other, _ = _epochs(fit_data(x, y, 32, seed=4)["x"], 2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    batches = [len(labels) for _, labels in fit_data(x, y, 32, seed=3)["x"]]
    assert batches == [32, 32, 32, 4]
    for images, labels in fit_data(x, y, 32, seed=3)["x"]:
        assert np.array_equal(images.numpy().reshape(-1), labels.numpy())  # each image keeps its label


@pytest.mark.tensorflow_only  # the tf.data pipeline is TensorFlow's; other backends: the last test
def test_validation_keeps_the_order_and_no_pipeline_autotunes(arrays):
    x, y = arrays
    (validation,) = _epochs(validation_data(x, y, 64)["validation_data"], 1)
    assert np.array_equal(validation, y)
    assert fit_data(x, y, 32)["x"].options().autotune.enabled is False
    assert validation_data(x, y, 64)["validation_data"].options().autotune.enabled is False


ON_JAX = """
import numpy as np
from tuner.training.feeding import fit_data, validation_data
x, y = np.zeros((10, 2, 2, 1), "float32"), np.arange(10)
data, check = fit_data(x, y, 4, seed=1), validation_data(x, y, 8)
assert data["x"] is x and data["y"] is y and data["batch_size"] == 4 and data["shuffle"] is True, data
assert check["validation_data"][0] is x and check["validation_batch_size"] == 8, check
print("arrays")
"""


@pytest.mark.slow  # a fresh process imports a Keras backend (10 CPU seconds)
def test_other_backends_read_the_arrays_through_keras():
    result = subprocess.run(
        [sys.executable, "-c", ON_JAX], env=tuner_env({"KERAS_BACKEND": "jax"}), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "arrays"
