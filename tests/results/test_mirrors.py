"""Flip test-time augmentation: the wrapped model averages over mirrors exactly, saves, reloads and is exported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_tuner

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


def test_no_flip_leaves_the_model_as_it_is_and_off_asks_nothing_of_the_data():
    model = _small_model((6, 6, 1))
    assert mirror_averaged(model, ()) is model

    def never():
        raise AssertionError("the data's flips were asked for with the setting off")

    assert exported_flips("off", never) == ()
    assert exported_flips("auto", lambda: ("horizontal", "rotation", "zoom")) == ("horizontal",)
    assert exported_flips("auto", lambda: ("rotation", "translation")) == ()


@pytest.mark.slow
def test_an_export_with_test_time_flips_is_mirror_invariant_on_either_backend_and_says_so_on_its_card(
    tmp_path, digits_28_npz
):
    from tuner.data import load_dataset
    from tuner.results.export import evaluate
    from tuner.results.predict import load_model

    study = tmp_path / "mirrored.toml"
    study.write_text(f'dataset = "{digits_28_npz}"\nsubset = 400\nfolds = 2\nepochs = 4\naugmentation = ["horizontal"]\n')
    result = run_tuner(
        str(study),
        "--trials",
        "1",
        "--baselines",
        "seed000-v1",
        "--storage",
        f"sqlite:///{tmp_path / 't.db'}",
        "--export-top",
        "1",
        "--test-time-flips",
        "auto",
        cwd=tmp_path,
    )
    out = tmp_path / "exports" / "mirrored"
    assert result.returncode == 0, result.stderr
    (card_file,) = out.glob("trial-*.card.json")
    card = json.loads(card_file.read_text())
    assert card["test_time_flips"] == ["horizontal"]
    assert "Test-time flips: horizontal" in card_file.with_suffix("").with_suffix(".card.md").read_text()
    model = load_model(out / card["model_file"])
    x, y = load_dataset(str(digits_28_npz)).test_split()
    plain, mirrored = model.predict(x, verbose=0), model.predict(np.flip(x, axis=2), verbose=0)
    assert np.allclose(plain, mirrored, atol=1e-5)  # averaged over both, an image and its mirror score alike
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
