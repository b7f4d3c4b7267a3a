"""Deployable formats: SavedModel, ONNX and LiteRT beside the .keras file, each checked by its own runtime."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_tuner, tuner_env

ALL = "keras,saved_model,onnx,litert"
FILES = {"keras": ".keras", "saved_model": ".saved_model", "onnx": ".onnx", "litert": ".tflite"}

# Each format loaded by its own runtime in a process that never saw the export, scored on the test split.
SCORE_EACH_FORMAT_IN_A_FRESH_PROCESS = """
import json, sys
import numpy as np
from tuner.data import load_dataset
x, y = load_dataset("digits").test_split()
x = x.astype("float32")
stem = sys.argv[1]
def keras_format(path):
    import keras
    return keras.saving.load_model(path, safe_mode=True).predict(x, batch_size=256, verbose=0)
def saved_model(path):
    import tensorflow as tf
    loaded = tf.saved_model.load(path)  # held: its functions use its variables
    return loaded.serve(tf.constant(x)).numpy()
def onnx(path):
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
def litert(path):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    given = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(given, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
runs = {"keras": (keras_format, ".keras"), "saved_model": (saved_model, ".saved_model"),
        "onnx": (onnx, ".onnx"), "litert": (litert, ".tflite")}
scores = {}
for name, (run, suffix) in runs.items():
    probabilities = np.asarray(run(stem + suffix), dtype="float64")
    scores[name] = {"accuracy": float(np.mean(probabilities.argmax(1) == y)), "probabilities": probabilities.tolist()}
print(json.dumps(scores))
"""


@pytest.fixture(scope="module")
def formats_export(digits_export, tmp_path_factory):
    """The digits study's best trial exported in all four formats."""
    out = tmp_path_factory.mktemp("formats")
    result = run_tuner(
        "export", "digits", "--storage", digits_export["url"], "--format", ALL, "--out", str(out), cwd=out, timeout=900
    )
    assert result.returncode == 0, result.stderr
    (card_path,) = out.glob("trial-*.card.json")
    return {"out": out, "stem": str(card_path).removesuffix(".card.json"), "card": json.loads(card_path.read_text())}


@pytest.mark.slow
def test_every_format_is_written_with_its_figures_on_the_card(formats_export):
    card, stem = formats_export["card"], Path(formats_export["stem"])
    assert list(card["formats"]) == list(FILES)
    for name, suffix in FILES.items():
        entry = card["formats"][name]
        path = Path(f"{stem}{suffix}")
        assert entry["file"] == path.name and path.exists()
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
        assert entry["bytes"] == size > 0
        agreement = entry["agreement"]
        assert agreement["images"] == card["test"]["images"] == 360
        assert agreement["top1_agreement"] == 1.0
        assert 0 <= agreement["max_abs_probability_difference"] <= agreement["tolerance"] == 1e-4
        latency = entry["latency"]
        assert latency["batch_1_ms_per_image"] > 0 and latency["batch_64_ms_per_image"] > 0
        assert "median of" in latency["method"] and "warm-up" in latency["method"]
    assert card["formats"]["keras"]["sha256"] == card["model_sha256"]
    assert not list(formats_export["out"].glob(".*partial*"))  # nothing half-written is left
    markdown = Path(f"{stem}.card.md").read_text()
    assert "## Formats" in markdown and f"`{Path(stem).name}.tflite`" in markdown
    manifest = json.loads((formats_export["out"] / "export.json").read_text())
    assert manifest["models"][0]["formats"] == {name: f"{Path(stem).name}{s}" for name, s in FILES.items()}


@pytest.mark.slow
def test_each_format_reloads_in_a_fresh_process_and_scores_the_cards_figures(formats_export):
    result = subprocess.run(
        [sys.executable, "-c", SCORE_EACH_FORMAT_IN_A_FRESH_PROCESS, formats_export["stem"]],
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    card = formats_export["card"]
    keras_probabilities = np.array(scores["keras"]["probabilities"])
    for name, score in scores.items():
        assert score["accuracy"] == card["test"]["accuracy"], name
        difference = np.max(np.abs(np.array(score["probabilities"]) - keras_probabilities))
        assert difference <= card["formats"][name]["agreement"]["tolerance"], (name, difference)


@pytest.mark.slow
def test_a_run_with_export_top_writes_its_formats(tmp_path, sqlite_url):
    result = run_tuner(
        "digits",
        "--trials",
        "1",
        "--baselines",
        "seed000-v1",
        "--folds",
        "2",
        "--epochs",
        "1",
        "--export-top",
        "1",
        "--format",
        "onnx",
        "--storage",
        sqlite_url,
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "exports" / "digits" / "trial-0.card.json").read_text())
    assert set(card["formats"]) == {"keras", "onnx"} and (tmp_path / "exports" / "digits" / "trial-0.onnx").is_file()
    assert card["test"]["accuracy"] > 0.3  # one epoch learned (chance: 0.1)
    assert "also, each checked against it on the test split: trial-0.onnx" in result.stdout


def test_an_unknown_format_is_one_line(tmp_path):
    result = run_tuner("export", "digits", "--format", "keras,pdf", cwd=tmp_path)
    assert_one_line_error(result, "unknown export format 'pdf'", "keras, saved_model, onnx, litert")


def test_a_format_whose_converter_is_not_installed_names_its_extra():
    from tuner.results.formats import FORMATS, Format, missing_modules

    absent = "tuner_no_such_converter"
    assert missing_modules([absent, "json"]) == [absent]
    needy = Format("onnx", "onnx", ".onnx", ("json", absent), "onnx", ("tensorflow",), "onnxruntime", "onnxruntime")
    assert needy.problem("tensorflow") == (
        f"export format onnx needs {absent}, not installed; install it: pip install 'tuner[onnx]'"
    )
    assert all(f.problem("tensorflow") is None for f in FORMATS.values())  # the test extra installs them all


@pytest.mark.slow  # loads Keras on JAX in a subprocess
@pytest.mark.parametrize("command", [["export", "digits"], ["digits", "--export-top", "1", "--trials", "1"]])
def test_on_jax_onnx_and_litert_are_refused_before_any_training(tmp_path, command):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_tuner(*command, "--format", "keras,litert", "--storage", url, cwd=tmp_path, env={"KERAS_BACKEND": "jax"})
    assert_one_line_error(result, "export format litert cannot be written on Keras' jax backend", "KERAS_BACKEND=tensorflow")
    assert not (tmp_path / "study.db").exists()  # refused before the study was opened


def _two_models(x):
    import keras

    models = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input(x.shape[1:])
        hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
        models.append(keras.Model(inputs, outputs))
    return models


@pytest.mark.slow  # converts three formats (no training)
def test_a_format_that_disagrees_with_its_reference_is_removed_with_one_line(tmp_path, capsys):
    """Checked against another model's probabilities, every format disagrees: none is left, each says why."""
    from tuner.core.errors import TunerError
    from tuner.results.formats import write_formats

    x = np.random.default_rng(0).random((40, 8, 8, 1), dtype="float32")
    ours, other = _two_models(x)
    reference = np.asarray(other.predict(x, verbose=0), dtype="float64")
    written = write_formats(ours, tmp_path / "trial-7", ["saved_model", "onnx", "litert"], x, reference)
    assert written.paths == {} and set(written.rejected) == {"saved_model", "onnx", "litert"}
    assert list(tmp_path.iterdir()) == []  # no file, no folder, no partial
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    for line, name in zip(lines, ("saved_model", "onnx", "litert")):
        assert f"({name}) not written: top class differs on" in line and "tolerance 1e-04" in line
    with pytest.raises(TunerError, match="does not reproduce the trained model"):
        write_formats(ours, tmp_path / "trial-7", ["keras"], x, reference)
    assert list(tmp_path.iterdir()) == []
    agreeing = write_formats(ours, tmp_path / "trial-7", ["keras", "onnx"], x, np.asarray(ours.predict(x, verbose=0)))
    assert set(agreeing.paths) == {"keras", "onnx"} and agreeing.card["onnx"]["agreement"]["top1_agreement"] == 1.0


@pytest.mark.slow
def test_on_jax_a_saved_model_is_written_and_checked(tmp_path):
    script = (
        "import json, sys, numpy as np, keras; from pathlib import Path; from tuner.results.formats import write_formats; "
        "x = np.random.default_rng(0).random((70, 8, 8, 1), dtype='float32'); "
        "i = keras.Input((8, 8, 1)); m = keras.Model(i, keras.layers.Dense(10, activation='softmax')("
        "keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(i)))); "
        "w = write_formats(m, Path(sys.argv[1]) / 'trial-0', ['keras', 'saved_model'], x, m.predict(x, verbose=0)); "
        "print(json.dumps({'backend': keras.backend.backend(), 'card': w.card}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=tuner_env({"KERAS_BACKEND": "jax"}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout.strip().splitlines()[-1])
    assert made["backend"] == "jax" and (tmp_path / "trial-0.saved_model" / "saved_model.pb").is_file()
    assert made["card"]["saved_model"]["agreement"]["top1_agreement"] == 1.0
    assert made["card"]["saved_model"]["latency"]["batch_64_ms_per_image"] > 0


def test_the_setting_keeps_one_order_and_always_keras(tmp_path):
    from tuner.core.study_file import load_study_config

    assert load_study_config("digits").export_formats == ["keras"]
    assert load_study_config("digits", {"export_formats": ["litert", "onnx", "litert"]}).export_formats == [
        "keras",
        "onnx",
        "litert",
    ]
    study = tmp_path / "mine.toml"
    study.write_text('dataset = "digits"\n[export]\nexport_formats = "saved_model"\n')
    assert load_study_config(str(study)).export_formats == ["keras", "saved_model"]
