"""`tuner predict`: exported models classify images; unsafe or foreign files are refused in one line."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_tuner
from PIL import Image

pytestmark = pytest.mark.slow  # each test uses the exported digits models


def test_predict_classifies_test_images_saved_as_png_as_the_model_does_and_mostly_right(digits_export, reloaded, tmp_path):
    """Every test image, right or wrong, as a PNG: the class and probability printed are the model's own, and right."""
    import keras

    from tuner.data import load_dataset

    x_test, y_test = load_dataset("digits").test_split()
    model_path = sorted(digits_export["out"].glob("*.keras"))[0]
    pixels = np.rint(x_test[..., 0] * 255).astype("uint8")  # what a PNG holds: 8 bits a pixel
    paths = []
    for index, image in enumerate(pixels):
        path = tmp_path / f"test-{index}.png"
        Image.fromarray(image, mode="L").save(path)
        paths.append(str(path))
    result = run_tuner("predict", str(model_path), *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(y_test)
    printed_labels, printed_probabilities = [], []
    for line, path in zip(lines, paths):
        label, rest = line.split(": ")
        name, probability = rest.split(" (")
        assert label == path
        printed_labels.append(int(name))  # (digits' class names are its digits)
        printed_probabilities.append(float(probability.rstrip(")")))

    # the model itself, loaded here, on the same 8-bit pixels
    model = keras.saving.load_model(model_path, safe_mode=True)
    own = np.asarray(model.predict(pixels[..., np.newaxis].astype("float32") / 255.0, verbose=0))
    assert printed_labels == own.argmax(axis=1).tolist()
    assert printed_probabilities == pytest.approx(own.max(axis=1), abs=1e-3)  # printed with 3 decimals
    # and right: on the arrays the exported model scored its test accuracy; through PNGs it scores the same
    accuracy = float(np.mean(np.array(printed_labels) == y_test))
    assert accuracy > 0.75  # chance is 0.1 (the card says above 0.8: tests/results/test_export.py)
    assert accuracy == pytest.approx(reloaded["figures"][str(model_path)]["accuracy"], abs=0.02)


def test_predict_on_a_text_file_is_one_line(digits_export, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image, not a model\n")
    model = sorted(digits_export["out"].glob("*.keras"))[0]
    assert_one_line_error(run_tuner("predict", str(notes), str(notes), cwd=tmp_path), "is not a Keras model file")
    assert_one_line_error(run_tuner("predict", str(model), str(notes), cwd=tmp_path), "not a PNG or JPEG image")


def test_a_model_that_would_run_code_is_refused_by_safe_mode(reloaded, tmp_path):
    image = tmp_path / "blank.png"
    Image.fromarray(np.zeros((8, 8), dtype="uint8"), mode="L").save(image)
    lambda_model = reloaded["lambda_model"]
    result = run_tuner("predict", str(lambda_model), str(image), cwd=tmp_path)
    assert_one_line_error(result, "refused by Keras' safe mode")
    assert not Path(f"{lambda_model}.ran").exists()  # its code never ran
