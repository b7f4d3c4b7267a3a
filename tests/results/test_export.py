"""`tuner export`: the best trials come out as .keras models with cards, plots and artifacts."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import optuna
import pytest
from conftest import FIXTURES, assert_one_line_error, run_tuner, tuner_env
from optuna.trial import TrialState, create_trial

TRIAL_FILES = (".keras", ".card.json", ".card.md", ".curves.png", ".confusion.png")


def _cards(out):
    """The shared export's cards by trial number: two, or the checks that loop over them would check nothing."""
    cards = {int(path.name.split(".")[0].split("-")[1]): json.loads(path.read_text()) for path in out.glob("*.card.json")}
    assert len(cards) == 2, sorted(p.name for p in out.iterdir())
    return cards


@pytest.mark.slow
def test_export_top_2_writes_two_models_with_cards_and_plots(digits_export):
    out = digits_export["out"]
    cards = _cards(out)
    assert len(cards) == 2 and len(list(out.glob("*.keras"))) == 2
    for number in cards:
        for suffix in TRIAL_FILES:
            path = out / f"trial-{number}{suffix}"
            assert path.is_file() and path.stat().st_size > 0, path
    assert (out / "study-history.png").is_file()
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the two best trials by CV accuracy, in the card with seed 000's line, and learning happened
    study = optuna.load_study(study_name="digits", storage=digits_export["url"])
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.value)
    assert set(cards) == {t.number for t in complete[:2]}
    for number, card in cards.items():
        assert card["cv"]["line"].startswith("Accuracy: mean=") and card["cv"]["line"].endswith("n=2")
        assert card["test"]["accuracy"] > 0.8
        assert card["final_training"]["epochs"] == int(np.floor(np.mean(card["cv"]["best_epochs"]) + 0.5))  # half up
        assert card["final_training"]["epochs_rule"] == "rounded mean best epoch over the folds"
        assert card["final_training"]["history"]["loss"][-1] < card["final_training"]["history"]["loss"][0]
        assert card["parameters"]["trainable"] > 0 and card["libraries"]["keras"]
        assert len(card["data"]["train_sha256"]) == 64 and card["baseline_comparison"]["name"].startswith("seed000")
        assert {c["class"] for c in card["test"]["per_class"]} == {str(d) for d in range(10)}
        markdown = (out / f"trial-{number}.card.md").read_text()
        assert f"trial {number}" in markdown and "| precision |" not in markdown.split("## Per class")[0]


@pytest.mark.slow
def test_each_model_reloads_in_a_fresh_process_with_the_cards_test_accuracy(digits_export, reloaded):
    cards = _cards(digits_export["out"])
    assert len(reloaded["figures"]) == len(cards)  # every exported model reloaded
    for path, figures in reloaded["figures"].items():
        card = cards[int(path.rsplit("trial-", 1)[1].split(".")[0])]
        assert abs(figures["accuracy"] - card["test"]["accuracy"]) <= 1e-6
        assert abs(figures["loss"] - card["test"]["loss"]) <= 1e-6


@pytest.mark.slow
def test_confusion_matrix_rows_sum_to_the_test_class_counts(digits_export):
    from tuner.data import load_dataset

    _, y_test = load_dataset("digits").test_split()
    for card in _cards(digits_export["out"]).values():
        matrix = np.array(card["test"]["confusion_matrix"])
        assert matrix.shape == (10, 10)
        assert matrix.sum(axis=1).tolist() == np.bincount(y_test, minlength=10).tolist()
        assert np.trace(matrix) / matrix.sum() == card["test"]["accuracy"]


@pytest.mark.slow
def test_artifacts_are_listed_on_the_trial(digits_export):
    storage = optuna.storages.RDBStorage(digits_export["url"])
    study = optuna.load_study(study_name="digits", storage=storage)
    store = optuna.artifacts.FileSystemArtifactStore(str(digits_export["folder"] / "study-artifacts"))
    for number in _cards(digits_export["out"]):
        metas = optuna.artifacts.get_all_artifact_meta(study.trials[number], storage=storage)
        by_name = {meta.filename: meta for meta in metas}
        assert set(by_name) == {f"trial-{number}{s}" for s in TRIAL_FILES if s != ".keras"}
        assert by_name[f"trial-{number}.card.json"].mimetype == "application/json"
        with store.open_reader(by_name[f"trial-{number}.card.json"].artifact_id) as handle:
            assert handle.read() == (digits_export["out"] / f"trial-{number}.card.json").read_bytes()
    study_files = {meta.filename for meta in optuna.artifacts.get_all_artifact_meta(study)}
    assert "study-history.png" in study_files


def _dashboard_get(app, path):
    status = {}
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.setdefault("code", code)))
    return status["code"], body


@pytest.mark.slow
def test_the_dashboard_shows_the_artifacts_on_the_trials_page(digits_export):
    from optuna_dashboard import wsgi

    store = optuna.artifacts.FileSystemArtifactStore(str(digits_export["folder"] / "study-artifacts"))
    app = wsgi(optuna.storages.RDBStorage(digits_export["url"]), artifact_store=store)
    code, body = _dashboard_get(app, "/api/studies/1")  # what the trial page is drawn from
    assert code.startswith("200")
    trials = {t["number"]: t for t in json.loads(body)["trials"]}
    for number in _cards(digits_export["out"]):
        artifacts = {a["filename"]: a["artifact_id"] for a in trials[number]["artifacts"]}
        assert f"trial-{number}.confusion.png" in artifacts
        code, png = _dashboard_get(
            app, f"/artifacts/1/{trials[number]['trial_id']}/{artifacts[f'trial-{number}.confusion.png']}"
        )
        assert code.startswith("200") and png == (digits_export["out"] / f"trial-{number}.confusion.png").read_bytes()


@pytest.mark.slow
def test_the_test_split_is_read_by_export_only(digits_export):
    reads = digits_export["reads"]
    assert (reads["after_study"], reads["after_export"]) == (0, 1)


@pytest.mark.slow
def test_export_of_an_unknown_study_is_one_line(digits_export, tmp_path):
    result = run_tuner("export", "digits", "--storage", digits_export["url"], "--study-name", "nope", cwd=tmp_path)
    assert_one_line_error(result, "no study named 'nope'")
    result = run_tuner("export", "digits", "--top", "0", "--storage", digits_export["url"], cwd=tmp_path)
    assert_one_line_error(result, "--top must be a whole number >= 1")


@pytest.mark.slow
def test_a_run_with_export_top_exports_when_its_timeout_ends_it(tmp_path, sqlite_url):
    result = run_tuner(
        "digits",
        "--trials",
        "50",
        "--timeout",
        "1",
        "--export-top",
        "1",
        "--baselines",
        "seed000-v1",
        "--folds",
        "2",
        "--epochs",
        "2",
        "--storage",
        sqlite_url,
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="digits", storage=sqlite_url)
    assert len(study.trials) < 50  # the timeout ended it
    card = json.loads((tmp_path / "exports" / "digits" / "trial-0.card.json").read_text())
    assert card["trial"]["baseline"] == "seed000-v1" and card["test"]["accuracy"] > 0.7
    assert "trial 0: exports/digits/trial-0.keras" in result.stdout


def test_final_budget_cuts_the_epochs_by_the_trials_measured_speed():
    """A wall-clock goal: the final training gets the epochs that fit its budget at the speed the folds measured."""
    from tuner.core.spec import ModelSpec, TrainSpec, TrialSpec
    from tuner.results.export import plan_final_training

    per_image = 0.002
    trial = create_trial(
        value=0.9, user_attrs={"val_accuracy_mean": 0.9, "best_epochs": [2, 3], "seconds_per_image": per_image}
    )
    spec = TrialSpec(ModelSpec(input_shape=(8, 8, 1), num_classes=10, blocks=()), TrainSpec(epochs=3))
    images = 1000
    epoch_seconds = per_image * images
    assert plan_final_training(trial, spec).epochs == 3  # the rounded mean best epoch, 2.5 rounds half up
    assert plan_final_training(trial, spec, fixed=12).epochs == 12
    cut = plan_final_training(trial, spec, fixed=12, budget=4.5 * epoch_seconds, images=images)
    assert cut.epochs == 4 and "was 12, cut to fit final_budget" in cut.rule
    assert plan_final_training(trial, spec, fixed=12, budget=0.1 * epoch_seconds, images=images).epochs == 1  # at least one
    roomy = plan_final_training(trial, spec, fixed=12, budget=100 * epoch_seconds, images=images)
    assert roomy.epochs == 12 and "fits final_budget" in roomy.rule
    unmeasured = plan_final_training(create_trial(value=0.9), spec, budget=10, images=images)
    assert unmeasured.epochs == 3 and "not applied" in unmeasured.rule


@pytest.mark.slow
def test_trials_store_their_spec_and_export_rebuilds_from_it(digits_export):
    """The spec on the trial is the model export trains: the card's spec is the stored one, epochs aside."""
    from tuner.core.record import TrialRecord

    study = optuna.load_study(study_name="digits", storage=digits_export["url"])
    for number, card in _cards(digits_export["out"]).items():
        stored = TrialRecord.of(study.trials[number]).spec
        assert stored is not None
        assert card["spec"]["model"] == json.loads(json.dumps(stored.to_dict()))["model"]


@pytest.mark.slow
def test_a_study_stored_by_the_previous_layout_still_reports_and_exports(tmp_path):
    """tests/fixtures/old-main-study.db was written before specs were stored on trials (see its README)."""
    shutil.copy(FIXTURES / "old-main-study.db", tmp_path / "old.db")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    report = run_tuner("report", "digits", "--storage", url, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "seed000-v1" in report.stdout and "Accuracy: mean=" in report.stdout
    two = run_tuner("report", "digits", "--study-name", "two", "--storage", url, cwd=tmp_path)
    assert two.returncode == 0 and "Overfitting constraint" in two.stdout and "Pareto front" in two.stdout
    exported = run_tuner("export", "digits", "--storage", url, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (card,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.card.json")]
    study = optuna.load_study(study_name="digits", storage=url)
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert card["trial"]["number"] == best.number and card["params"] == best.params
    assert card["test"]["accuracy"] > 0.3  # 400 images, 2 epochs: it learned (chance is 0.1)


@pytest.mark.slow
def test_export_ensemble_averages_the_best_models_into_one_file_with_its_own_card(digits_export, tmp_path):
    out = tmp_path / "ensemble"
    result = run_tuner(
        "export", "digits", "--storage", digits_export["url"], "--ensemble", "2", "--out", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (model,) = out.glob("ensemble-*.keras")
    card = json.loads(model.with_suffix(".card.json").read_text())
    members = {m["trial"]: m["test_accuracy"] for m in card["members"]}
    assert len(members) == 2 and card["test"]["accuracy"] > 0.8
    single = {
        json.loads(p.read_text())["trial"]["number"]: json.loads(p.read_text())["test"]["accuracy"]
        for p in out.glob("trial-*.card.json")
    }
    assert single == members  # each member's own card agrees with the ensemble's table
    assert "| ensemble |" in model.with_suffix(".card.md").read_text()
    reload = (
        "import sys, keras; from tuner.data import load_dataset; from tuner.results.export import evaluate; "
        "x, y = load_dataset('digits').test_split(); "
        "print(evaluate(keras.saving.load_model(sys.argv[1], safe_mode=True), x, y).accuracy)"
    )
    again = subprocess.run(
        [sys.executable, "-c", reload, str(model)], capture_output=True, text=True, env=tuner_env(), timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert abs(float(again.stdout.strip().splitlines()[-1]) - card["test"]["accuracy"]) < 1e-6
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["ensemble"]["model"] == model.name
    assert_one_line_error(
        run_tuner("export", "digits", "--storage", digits_export["url"], "--ensemble", "1", "--out", str(out), cwd=tmp_path),
        "--ensemble must be 0 (none) or at least 2",
    )
