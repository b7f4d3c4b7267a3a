"""`tuner predict`: exported models classify images; unsafe or foreign files are refused in one line."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_tuner
from PIL import Image

pytestmark = pytest.mark.slow  # each test uses the exported digits models


def test_predict_prints_the_class_of_test_images_saved_as_png(digits_export, reloaded, tmp_path):
    from tuner.data import load_dataset

    x_test, y_test = load_dataset("digits").test_split()
    model = sorted(digits_export["out"].glob("*.keras"))[0]
    predictions = np.array(reloaded["figures"][str(model)]["predictions"])
    chosen = np.flatnonzero(predictions == y_test)[:6]  # images the model gets right on the original arrays
    paths = []
    for index in chosen:
        path = tmp_path / f"test-{index}.png"
        Image.fromarray(np.rint(x_test[index, :, :, 0] * 255).astype("uint8"), mode="L").save(path)
        paths.append(str(path))
    result = run_tuner("predict", str(model), *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(chosen)
    for line, index in zip(lines, chosen):
        label, rest = line.split(": ")
        name, probability = rest.split(" (")
        assert label.endswith(f"test-{index}.png") and name == str(y_test[index])
        assert 0.1 < float(probability.rstrip(")")) <= 1.0


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
