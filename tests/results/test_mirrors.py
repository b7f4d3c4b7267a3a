"""Flip test-time augmentation: the wrapped model averages over mirrors exactly, saves, reloads and is exported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_tuner

from tuner.core.spec import Augmentation
from tuner.results.mirrors import exported_flips, mirror_averaged

AXES = {"horizontal": 2, "vertical": 1}


def _small_model(shape):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3)(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("flips", [("horizontal",), ("vertical",), ("horizontal", "vertical")])
def test_the_wrapped_model_averages_the_image_and_its_mirrors_and_reloads_in_safe_mode(flips, tmp_path):
    from tuner.results.predict import load_model

    model = _small_model((6, 5, 3))  # not square: a flip along the wrong axis would not even fit
    x = np.random.default_rng(1).random((7, 6, 5, 3)).astype("float32")
    views = [x, *(np.flip(x, axis=AXES[flip]) for flip in flips)]
    expected = np.mean([model.predict(view, verbose=0) for view in views], axis=0)
    wrapped = mirror_averaged(model, flips)
    assert np.allclose(wrapped.predict(x, verbose=0), expected, atol=1e-6)
    assert not np.allclose(model.predict(x, verbose=0), expected, atol=1e-3)  # the mirrors changed something
    assert len(wrapped.trainable_weights) == len(model.trainable_weights)  # the mirrors learn nothing
    wrapped.save(tmp_path / "wrapped.keras")
    again = load_model(tmp_path / "wrapped.keras")  # safe mode: Keras' own layers only
    assert np.allclose(again.predict(x, verbose=0), expected, atol=1e-6)


def test_no_flip_leaves_the_model_as_it_is_and_auto_averages_over_the_flips_the_model_trained_with():
    model = _small_model((6, 6, 1))
    assert mirror_averaged(model, ()) is model
    both = Augmentation(flip="horizontal_and_vertical", rotation=0.1)
    assert exported_flips("off", both) == ()
    assert exported_flips("auto", both) == ("horizontal", "vertical")
    assert exported_flips("auto", Augmentation(flip="vertical", zoom=0.1)) == ("vertical",)
    assert exported_flips("auto", Augmentation(rotation=0.1, translation=0.1)) == ()  # no mirror among them


@pytest.mark.slow
def test_auto_wraps_the_export_that_trained_on_mirrors_and_leaves_the_other_as_it_is(tmp_path, digits_28_npz):
    from search_spaces import cnn
    from tuner.core.study_file import load_study_config
    from tuner.data import load_dataset
    from tuner.results.export import evaluate
    from tuner.results.predict import load_model
    from tuner.search.study import open_study

    study = tmp_path / "mirrored.toml"
    study.write_text(f'dataset = "{digits_28_npz}"\nsubset = 400\nfolds = 2\nepochs = 4\naugmentation = ["horizontal"]\n')
    url = f"sqlite:///{tmp_path / 't.db'}"
    opened = open_study(load_study_config(str(study), {}), url)
    for flip in ("horizontal", "none"):  # the seed model, trained on left-right mirrors and without them
        opened.enqueue_trial({**cnn.TRAIT_DEFAULTS, **cnn.BASELINES["seed000-v1"], "epochs": 4, "augment_flip": flip})
    args = ["--trials", "2", "--baselines", "none", "--storage", url, "--export-top", "2", "--test-time-flips", "auto"]
    result = run_tuner(str(study), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "exports" / "mirrored"
    x, y = load_dataset(str(digits_28_npz)).test_split()
    trained_flips = {trial.number: trial.params["augment_flip"] for trial in opened.get_trials(deepcopy=False)}
    cards = [json.loads(path.read_text()) for path in sorted(out.glob("trial-*.card.json"))]
    assert sorted(trained_flips[card["trial"]["number"]] for card in cards) == ["horizontal", "none"]
    for card in cards:
        model = load_model(out / card["model_file"])
        plain, mirrored = model.predict(x, verbose=0), model.predict(np.flip(x, axis=2), verbose=0)
        markdown = (out / card["model_file"]).with_suffix(".card.md").read_text()
        if trained_flips[card["trial"]["number"]] == "horizontal":
            assert card["test_time_flips"] == ["horizontal"] and "Test-time flips: horizontal" in markdown
            assert np.allclose(plain, mirrored, atol=1e-5)  # averaged over both, an image and its mirror score alike
        else:  # a model that never saw a mirror is not asked to judge one
            assert card["test_time_flips"] == [] and "Test-time flips" not in markdown
            assert not np.allclose(plain, mirrored, atol=1e-3)
        assert evaluate(model, x, y).accuracy == pytest.approx(card["test"]["accuracy"])
        assert card["test"]["accuracy"] > 0.5  # it learned: ten classes


@pytest.mark.slow
def test_the_wrapped_model_is_written_in_every_format_and_each_runtime_agrees(tmp_path):
    from tuner.results.formats import write_formats

    wrapped = mirror_averaged(_small_model((12, 10, 1)), ("horizontal",))
    x = np.random.default_rng(2).random((20, 12, 10, 1)).astype("float32")
    names = ["keras", "saved_model", "onnx", "litert"]
    written = write_formats(wrapped, tmp_path / "trial-0", names, x, wrapped.predict(x, verbose=0))
    assert written.rejected == {} and sorted(written.paths) == sorted(names)  # each checked by its own runtime
