"""Batch normalisation's moving statistics follow a short training: a cheap rung validates what it trained."""

import numpy as np
import pytest

from tuner import data
from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.training.train_once import train_once


@pytest.mark.slow
def test_a_model_trained_for_64_steps_validates_with_the_statistics_of_its_final_weights():
    import keras

    digits = data.load_dataset("digits")
    x, y = digits.x_train, digits.y_train
    model_spec = ModelSpec(
        input_shape=(8, 8, 1),
        num_classes=10,
        blocks=(ConvBlock(16, 3, pooling=None),),
        dense_units=(32,),
        batch_norm=True,
        padding="same",
    )
    spec = TrialSpec(model_spec, TrainSpec(epochs=2, batch_size=32, optimizer="adam", learning_rate=3e-3))
    trained = train_once(spec, x[:1000], y[:1000], seed=0)  # 2 epochs of 32 batches
    model = trained.model
    conv = keras.Model(model.inputs, model.get_layer("block0_conv0").output)
    batch_means = keras.ops.convert_to_numpy(conv(x[:1000])).mean(axis=(0, 1, 2))
    moving_mean = keras.ops.convert_to_numpy(model.get_layer("block0_bn0").moving_mean)
    assert np.abs(moving_mean - batch_means).max() < 0.1 * np.abs(batch_means).max()  # 0.03-0.04; Keras' 0.99: 0.55
    assert model.evaluate(x[1000:], y[1000:], verbose=0)[1] > 0.93  # learned, and it shows (0.99 momentum: 0.90)
