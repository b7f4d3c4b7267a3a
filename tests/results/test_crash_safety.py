"""Files survive the process that writes them: kill -9 during export, and a full disk."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import keras
import optuna
import pytest
from conftest import assert_one_line_error, fill, run_tuner, tuner_env
from polling import wait_for

from tuner.core.files import sha256_of

pytestmark = pytest.mark.slow


@pytest.fixture
def own_study(digits_export, tmp_path) -> str:
    """A copy of the exported digits study: exports here attach artifacts to its trials, not to the shared one's."""
    shutil.copy(digits_export["folder"] / "study.db", tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


def _trials(url: str) -> list:
    return [(t.number, t.state, t.value) for t in optuna.load_study(study_name="digits", storage=url).get_trials()]


def test_export_killed_midway_leaves_no_complete_looking_file_and_the_next_export_finishes(own_study, tmp_path):
    out = tmp_path / "models"
    command = [sys.executable, "-m", "tuner", "export", "digits", "--top", "2", "--storage", own_study]
    export = subprocess.Popen([*command, "--out", str(out)], cwd=tmp_path, env=tuner_env(), stdout=subprocess.DEVNULL)
    try:  # kill it once the first model file is in place, before its card is
        wait_for(lambda: list(out.glob("trial-*.keras")) or export.poll() is not None, timeout=300, interval=0.05)
        export.send_signal(signal.SIGKILL)
    finally:
        export.wait()
    assert export.returncode == -signal.SIGKILL, "the export finished before it could be killed"
    for path in out.iterdir():  # whatever is there under its own name is whole
        if path.suffix == ".keras":
            keras.saving.load_model(path, safe_mode=True)
        if path.name.endswith(".card.json"):
            card = json.loads(path.read_text())
            assert card["model_sha256"] == sha256_of(out / card["model_file"])
    assert not (out / "export.json").exists()

    again = subprocess.run([*command, "--out", str(out)], cwd=tmp_path, env=tuner_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    cards = [json.loads(p.read_text()) for p in out.glob("trial-*.card.json")]
    assert len(cards) == 2 and len(list(out.glob("trial-*.keras"))) == 2
    for card in cards:  # each card names exactly the model beside it
        assert card["model_sha256"] == sha256_of(out / card["model_file"])
        keras.saving.load_model(out / card["model_file"], safe_mode=True)
    assert not list(out.glob(".*partial*"))  # the killed writer's temporary files are gone
    assert json.loads((out / "export.json").read_text())["models"]


def test_a_full_disk_is_one_line_and_exit_2_and_the_study_is_unchanged(own_study, small_disk, tmp_path):
    url = own_study
    before = _trials(url)
    exported = run_tuner("export", "digits", "--storage", url, "--out", str(small_disk / "models"), cwd=tmp_path)
    assert_one_line_error(exported, "no space left on the device")
    for path in (small_disk / "models").iterdir():  # what is there under its own name is whole; no card claims it
        assert path.name.startswith(".") or path.suffix == ".keras", path
        if path.suffix == ".keras":
            keras.saving.load_model(path, safe_mode=True)
    assert not list((small_disk / "models").glob(".*partial*"))
    assert _trials(url) == before

    fill(small_disk)  # the study file cannot grow
    study = run_tuner(
        "digits", "--trials", "1", "--folds", "2", "--epochs", "1", "--subset", "300", "--no-progress",
        "--storage", f"sqlite:///{small_disk / 'study.db'}", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(study, "no space left on the device")
