"""A define-by-run model of the user's own (a function of a trial returning a Keras model): tuned, exported, reloaded."""

import json
import subprocess
import sys
import time

import keras
import numpy as np
import optuna
import pytest
from conftest import fills_a_wall_clock, tuner_env
from sklearn.base import clone
from sklearn.datasets import load_digits
from user_model import small_cnn

import tuner
from search_spaces.model_function import ModelFunctionSpace
from tuner.api.estimator import CNNClassifier
from tuner.core.errors import TunerError
from tuner.core.traits import DataTraits
from tuner.training.models import build_model


def fixed(**params):
    return optuna.trial.FixedTrial({"filters": 8, "dropout": 0.1, "learning_rate": 0.05, "batch_size": 16, **params})


def test_the_spec_holds_the_model_and_the_recipe_it_was_compiled_with():
    spec = ModelFunctionSpace(small_cnn).suggest(fixed(), (8, 8, 1), 10, 5)
    assert (spec.train.optimizer, spec.train.learning_rate, spec.train.momentum) == ("sgd", 0.05, pytest.approx(0.9))
    assert (spec.train.batch_size, spec.train.epochs, spec.train.lr_schedule) == (16, 5, "none")
    # multiply-adds counted by hand: 8x8 positions x 3x3x1x8 kernel, then 4*4*8=128 features x 10 classes
    assert spec.model.multiply_adds() == 8 * 8 * 9 * 8 + 128 * 10
    rebuilt = build_model(spec.model)  # from the stored JSON alone: the same layers, fresh weights
    assert [type(layer).__name__ for layer in rebuilt.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert rebuilt.count_params() == (9 * 8 + 8) + (128 * 10 + 10)
    assert json.loads(json.dumps(spec.to_dict()))["model"]["keras_config"] == spec.model.keras_config
    budgeted = ModelFunctionSpace(small_cnn).suggest(fixed(), (8, 8, 1), 10, 5, DataTraits(recipe_fixed=True))
    assert budgeted.train.lr_schedule == "cosine"  # a budget's rungs and final training share one schedule


def test_a_function_may_take_the_data_shape_too():
    def sized(trial, input_shape, num_classes):
        layers = [keras.layers.Flatten(), keras.layers.Dense(num_classes, "softmax")]
        return keras.Sequential([keras.Input(input_shape), *layers])

    spec = ModelFunctionSpace(sized).suggest(fixed(), (6, 6, 3), 4, 2)
    assert spec.model.multiply_adds() == 6 * 6 * 3 * 4 and spec.train.optimizer == "adam"  # not compiled: Adam


def _flat(units=10, activation="softmax", shape=(8, 8, 1)):
    layers = [keras.layers.Flatten(), keras.layers.Dense(units, activation)]
    return lambda trial: keras.Sequential([keras.Input(shape), *layers])


def _compiled_with(optimizer):
    def build(trial):
        model = _flat()(trial)
        model.compile(optimizer=optimizer)
        return model

    return build


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda trial: "a model", "returned a str, not a Keras model"),
        (_flat(units=7), "gives (7,) outputs per image, the data has 10 classes"),
        (_flat(activation=None), "not class probabilities; end it with activation='softmax'"),
        (_flat(shape=(28, 28, 1)), "takes images of shape (28, 28, 1), the data's are (8, 8, 1)"),
        (_compiled_with(keras.optimizers.Lion()), "compiled with Lion; compile it with one of sgd"),
        (_compiled_with(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.1, 10))), "is a schedule"),
    ],
)
def test_a_model_that_cannot_be_tuned_is_one_line_naming_the_fix(build, fragment):
    with pytest.raises(TunerError) as raised:
        ModelFunctionSpace(build).suggest(fixed(), (8, 8, 1), 10, 3)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_give_space_or_model_not_both_and_a_model_is_a_function():
    with pytest.raises(TunerError, match="give space or model, not both"):
        tuner.tune((np.zeros((20, 8, 8)), np.arange(20) % 2), trials=1, space="cnn", model=small_cnn)
    with pytest.raises(TunerError, match="must be a function of a trial"):
        ModelFunctionSpace("small_cnn")  # type: ignore[arg-type]
    assert clone(CNNClassifier(model=small_cnn)).get_params()["model"] is small_cnn


def _digits():
    digits = load_digits()
    images = (digits.images * 255 / 16).astype("uint8")
    return images[:1400], digits.target[:1400], images[1400:], digits.target[1400:]


@pytest.mark.slow
def test_a_user_model_is_tuned_exported_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y, x_test, y_test = _digits()
    result = tuner.tune((x, y, x_test, y_test), model=small_cnn, trials=3, folds=2, epochs=4, progress=False, seed=3)
    trials = result.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert all(set(t.params) == {"filters", "dropout", "learning_rate", "batch_size"} for t in trials)
    assert min(t.value for t in trials) > 0.5  # chance is 0.1
    best = result.study.best_trial
    train = result.card["spec"]["train"]
    assert (train["optimizer"], train["batch_size"]) == ("sgd", best.params["batch_size"])
    assert train["learning_rate"] == pytest.approx(best.params["learning_rate"], rel=1e-6)  # float32 in the optimiser
    assert result.evaluate(x_test, y_test)["accuracy"] > 0.7  # on images the run never read
    reloaded = keras.saving.load_model(result.model_paths[0], safe_mode=True)
    assert type(reloaded.layers[0]).__name__ == "Conv2D"
    assert reloaded.layers[0].filters == best.params["filters"]


TUNE_ON_JAX = """
import json, keras, tuner
from sklearn.datasets import load_digits
from tests.api.user_model import small_cnn
digits = load_digits()
x = (digits.images * 255 / 16).astype("uint8")
result = tuner.tune((x[:1200], digits.target[:1200], x[1200:], digits.target[1200:]), model=small_cnn, trials=2,
                    folds=2, epochs=4, progress=False)
accuracy = result.evaluate(x[1200:], digits.target[1200:])["accuracy"]
print(json.dumps({"backend": keras.backend.backend(), "accuracy": accuracy}))
"""


@pytest.mark.slow
def test_a_user_model_trains_on_jax_too(tmp_path):
    ran = subprocess.run(
        [sys.executable, "-c", TUNE_ON_JAX],
        cwd=tmp_path,
        env=tuner_env({"KERAS_BACKEND": "jax"}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    figures = json.loads(ran.stdout.strip().splitlines()[-1])
    assert figures["backend"] == "jax" and figures["accuracy"] > 0.7, figures


@pytest.mark.slow
@fills_a_wall_clock
def test_a_user_model_within_a_budget_is_planned_judged_at_rungs_and_ends_in_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y, x_test, y_test = _digits()
    started = time.time()
    result = tuner.tune((x, y, x_test, y_test), model=small_cnn, budget="60s", progress=False)
    wall = time.time() - started
    judged = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert judged and all("rung" in t.user_attrs and "filters" in t.params for t in judged)
    assert wall <= 60 * 1.05, wall  # the budget counts from the call
    assert result.card["final_training"]["epochs_rule"].startswith("budget: cosine to zero over")
    assert result.evaluate(x_test, y_test)["accuracy"] > 0.8  # chance is 0.1
