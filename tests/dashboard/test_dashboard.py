"""`tuner dashboard` on a real study: its JSON API, a real browser, and workers writing meanwhile.

One short `digits` run (2 folds x 2 epochs, 2 seed baselines) makes the study;
`tuner export` then gives its best trial a model card (its note, with two
plots) and four artifacts, and the other trial gets a plot and a JSON file
attached by hand. The dashboard runs as a person starts it, `python -m tuner
dashboard`, in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from conftest import MACHINE_POSTGRES, assert_one_line_error, require_database, run_tuner, tuner_env
from polling import wait_for

from tuner.dashboard.notes import trial_note, write_trial_note
from tuner.storage.artifacts import attach_to_trial, trial_artifacts
from tuner.storage.optuna_compat import storage_of
from tuner.storage.storages import artifact_store, open_storage

QUICK = ["--folds", "2", "--epochs", "2", "--pruner", "none", "--no-progress"]
STEPS = [0, 1, 2, 3]  # 2 folds x 2 epochs: one intermediate value per epoch of every fold
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

EXPORT_FILES = (".curves.png", ".confusion.png", ".card.json", ".card.md")
pytestmark = pytest.mark.slow  # a real study, a real server, a real browser

requires_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="no chromium/chromedriver: apt-get install chromium chromium-driver"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


class Dashboard:
    """`python -m tuner dashboard STUDY --storage URL --port P`, started and stopped as a person would."""

    def __init__(self, study: str | None, storage: str, cwd: Path, host: str | None = None):
        self.port = _free_port()
        self.stopped = None
        where = ["--storage", storage, "--port", str(self.port), *(["--host", host] if host else [])]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner", "dashboard", *([study] if study else []), *where],
            cwd=cwd,
            env=tuner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"

        def answering() -> bool:
            assert self.process.poll() is None, self.process.communicate()
            return bool(_get(f"{self.base}/api/meta"))

        wait_for(answering, timeout=180, interval=0.5, what="the dashboard answering")
        self.printed = [self.process.stdout.readline().strip() for _ in range(2)]

    def study(self, study_id: int) -> dict:
        return _get(f"{self.base}/api/studies/{study_id}?after=0")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as in a terminal; returns the exit status and stderr."""
        if self.stopped is None:
            self.process.send_signal(signal.SIGINT)
            try:
                _, stderr = self.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                _, stderr = self.process.communicate()
            self.stopped = (self.process.returncode, stderr)
        return self.stopped


def _study_summary(dashboard: Dashboard, name: str) -> dict:
    summaries = _get(f"{dashboard.base}/api/studies")["study_summaries"]
    matches = [s for s in summaries if s["study_name"] == name]
    assert len(matches) == 1, [s["study_name"] for s in summaries]
    return matches[0]


def _learning_curve_png(trial: optuna.trial.FrozenTrial, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(trial.intermediate_values)
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.plot(steps, [trial.intermediate_values[s] for s in steps], marker="o")
    axes.set_xlabel("step (fold * epochs + epoch)")
    axes.set_ylabel("val accuracy")
    figure.savefig(path)
    plt.close(figure)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A real digits study: `tuner export` on its best trial, and a plot and a JSON file attached to the other."""
    workdir = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{workdir / 'study.db'}"
    result = run_tuner(
        "digits", "--storage", url, "--trials", "2", "--baselines", "seed000-v1,seed000-v2", *QUICK, cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    made = run_tuner("export", "digits", "--storage", url, "--out", str(workdir / "exports"), cwd=workdir)
    assert made.returncode == 0, made.stderr
    study = optuna.load_study(study_name="digits", storage=open_storage(url, heartbeat=False))
    best = study.best_trial
    other = next(t for t in study.trials if t.number != best.number)
    plot = _learning_curve_png(other, workdir / "learning_curve.png")
    card = workdir / "model_card.json"
    card.write_text(json.dumps({"trial": other.number, "cv_val_accuracy": other.value, "params": other.params}))
    store = artifact_store(url)
    ids = {path.name: attach_to_trial(study, other.number, path, store) for path in (plot, card)}
    write_trial_note(study, other.number, f"## Exported trial {other.number}\n\nTest accuracy: **0.9123**")
    export_card = json.loads((workdir / "exports" / f"trial-{best.number}.card.json").read_text())
    return SimpleNamespace(
        workdir=workdir, url=url, best=best, other=other, plot=plot, card=card, artifact_ids=ids, export_card=export_card
    )


@pytest.fixture(scope="module")
def dashboard(exported):
    server = Dashboard("digits", exported.url, exported.workdir)
    yield server
    server.stop()


def test_attached_artifacts_are_listed_by_optuna_on_the_finished_trial(exported):
    fresh = optuna.load_study(study_name="digits", storage=open_storage(exported.url, heartbeat=False))
    trial = fresh.trials[exported.other.number]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    metas = optuna.artifacts.get_all_artifact_meta(trial, storage=storage_of(fresh))
    assert {m.filename: m.artifact_id for m in metas} == exported.artifact_ids
    assert {m.filename: m.mimetype for m in metas} == {
        "learning_curve.png": "image/png",
        "model_card.json": "application/json",
    }
    assert [m.filename for m in trial_artifacts(fresh, exported.other.number)] == [m.filename for m in metas]
    assert "Test accuracy: **0.9123**" in trial_note(fresh, exported.other.number)
    downloaded = exported.workdir / "downloaded.png"
    optuna.artifacts.download_artifact(
        artifact_store=artifact_store(exported.url),
        artifact_id=exported.artifact_ids["learning_curve.png"],
        file_path=str(downloaded),
    )
    assert downloaded.read_bytes() == exported.plot.read_bytes()


def test_api_shows_the_study_its_trials_steps_and_artifacts(exported, dashboard):
    summary = _study_summary(dashboard, "digits")
    study_id = summary["study_id"]
    assert dashboard.printed[1] == f"Open {dashboard.base}/dashboard/studies/{study_id}"
    detail = dashboard.study(study_id)
    assert detail["objective_names"] == ["cv_val_accuracy"]
    assert "fold `s // 2 + 1`, epoch `s % 2 + 1`" in detail["note"]["body"]
    assert detail["user_attrs"]  # config, description, steps
    trials = {t["number"]: t for t in detail["trials"]}
    assert len(trials) >= 2
    for trial in trials.values():
        assert trial["state"] == "Complete"
        assert [v["step"] for v in trial["intermediate_values"]] == STEPS
        assert "val_accuracy_mean" in {a["key"] for a in trial["user_attrs"]}
    other = trials[exported.other.number]
    assert "Test accuracy: **0.9123**" in other["note"]["body"]
    artifacts = {a["filename"]: a for a in other["artifacts"]}
    assert set(artifacts) == {"learning_curve.png", "model_card.json"}
    png = _get(f"{dashboard.base}/artifacts/{study_id}/{other['trial_id']}/{artifacts['learning_curve.png']['artifact_id']}")
    assert png.startswith(PNG_MAGIC) and png == exported.plot.read_bytes()
    card = _get(f"{dashboard.base}/artifacts/{study_id}/{other['trial_id']}/{artifacts['model_card.json']['artifact_id']}")
    assert card["trial"] == exported.other.number
    # the exported trial: its card is its note, and the note's plots are served from the trial's own artifacts
    best = trials[exported.best.number]
    number = exported.best.number
    exported_files = {a["filename"]: a["artifact_id"] for a in best["artifacts"]}
    assert set(exported_files) == {f"trial-{number}{suffix}" for suffix in EXPORT_FILES}
    note = best["note"]["body"]
    assert note.startswith(f"# Model card: digits, trial {number}")
    for plot in (f"trial-{number}.curves.png", f"trial-{number}.confusion.png"):
        link = f"/artifacts/{study_id}/{best['trial_id']}/{exported_files[plot]}"
        assert f"]({link})" in note
        assert _get(f"{dashboard.base}{link}").startswith(PNG_MAGIC)


@requires_chromium
def test_browser_shows_the_trial_list_and_the_exported_trials_artifacts(exported, dashboard, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    wait = WebDriverWait(browser, 90)
    study_id = _study_summary(dashboard, "digits")["study_id"]
    body_text = lambda: browser.find_element(By.TAG_NAME, "body").text
    try:
        browser.get(f"{dashboard.base}/dashboard")  # the list of studies
        wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, f"a[href$='/dashboard/studies/{study_id}']"))).click()
        wait.until(lambda _: "Best Trial" in body_text())  # the study's own page
        wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, f"a[href$='/studies/{study_id}/trials']"))).click()
        wait.until(lambda _: all(f"Trial {n}" in body_text() for n in range(2)))  # the trial list
        number = exported.other.number
        item = wait.until(seen.element_to_be_clickable((By.XPATH, f"//*[normalize-space(text())='Trial {number}']")))
        item.click()
        wait.until(lambda _: "learning_curve.png" in body_text())
        text = body_text()
        assert "model_card.json" in text and "Test accuracy: 0.9123" in text
        artifact_link = f"/artifacts/{study_id}/"
        hrefs = [a.get_attribute("href") or "" for a in browser.find_elements(By.TAG_NAME, "a")]
        assert any(exported.artifact_ids["learning_curve.png"] in h and artifact_link in h for h in hrefs), hrefs
        # the exported trial's page: its note (the model card) and every image on the page load
        number = exported.best.number
        item = wait.until(seen.element_to_be_clickable((By.XPATH, f"//*[normalize-space(text())='Trial {number}']")))
        item.click()
        wait.until(lambda _: f"Model card: digits, trial {number}" in body_text())
        wait.until(lambda _: f"trial-{number}.confusion.png" in body_text())
        note_images = wait.until(
            lambda _: [
                i
                for i in browser.find_elements(By.TAG_NAME, "img")
                if (i.get_attribute("alt") or "") in ("learning curves", "confusion matrix")
            ]
        )
        assert len(note_images) == 2
        loaded = "return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])"
        images = wait.until(
            lambda _: (lambda shown: shown if shown and all(ok for _, ok in shown) else False)(
                browser.execute_script(loaded)
            )
        )
        assert all(f"/artifacts/{study_id}/" in src for src, _ in images), images
        screenshot = tmp_path / "dashboard-trial.png"
        assert browser.save_screenshot(str(screenshot))
    finally:
        browser.quit()
    data = screenshot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def _watch_while_worker_runs(dashboard: Dashboard, study_id: int, worker_args: list[str], cwd: Path):
    """Run a worker in the background; poll the API all along; returns (worker result, poll count)."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_tuner(*worker_args, cwd=cwd)))
    worker.start()
    polls = 0
    while worker.is_alive():
        dashboard.study(study_id)  # raises if the dashboard stopped answering
        polls += 1
        worker.join(timeout=1)
    return outcome["result"], polls


def test_dashboard_follows_a_worker_adding_trials_to_the_sqlite_study(exported, dashboard):
    study_id = _study_summary(dashboard, "digits")["study_id"]
    before = len(dashboard.study(study_id)["trials"])
    result, polls = _watch_while_worker_runs(
        dashboard,
        study_id,
        ["digits", "--storage", exported.url, "--trials", "1", "--baselines", "seed000-v3", *QUICK],
        exported.workdir,
    )
    assert result.returncode == 0, result.stderr
    assert polls >= 1

    # the dashboard caches the trial list for 2 s: poll until the new trial shows
    def finished_trials():
        trials = dashboard.study(study_id)["trials"]
        return trials if len(trials) == before + 1 and trials[-1]["state"] == "Complete" else None

    trials = wait_for(finished_trials, timeout=30, what="the new trial in the dashboard")
    assert trials[-1]["state"] == "Complete" and [v["step"] for v in trials[-1]["intermediate_values"]] == STEPS
    # export attaches to a trial while the dashboard runs: it shows without a restart
    study = optuna.load_study(study_name="digits", storage=open_storage(exported.url, heartbeat=False))
    attach_to_trial(study, trials[-1]["number"], exported.card, artifact_store(exported.url))
    shown = wait_for(
        lambda: dashboard.study(study_id)["trials"][-1]["artifacts"], timeout=30, what="the attached file in the dashboard"
    )
    assert [a["filename"] for a in shown] == ["model_card.json"]


def test_dashboard_follows_a_worker_adding_trials_to_a_postgres_study(tmp_path):
    require_database(MACHINE_POSTGRES)
    from tuner.core.study_file import load_study_config
    from tuner.search.study import open_study

    name = f"dashboard-test-{uuid.uuid4().hex[:8]}"
    study = open_study(load_study_config("digits", {"folds": 2, "epochs": 2, "pruner": "none"}), MACHINE_POSTGRES, name)
    server = Dashboard(name, MACHINE_POSTGRES, tmp_path)
    try:
        study_id = _study_summary(server, name)["study_id"]
        assert server.study(study_id)["trials"] == []
        result, polls = _watch_while_worker_runs(
            server,
            study_id,
            [
                "digits",
                "--storage",
                MACHINE_POSTGRES,
                "--study-name",
                name,
                "--trials",
                "1",
                "--baselines",
                "seed000-v1",
                *QUICK,
            ],
            tmp_path,
        )
        assert result.returncode == 0, result.stderr

        def finished_trials():
            trials = server.study(study_id)["trials"]
            return trials if trials and all(t["state"] == "Complete" for t in trials) else None

        trials = wait_for(finished_trials, timeout=30, what="the trial in the dashboard")
        assert [t["state"] for t in trials] == ["Complete"]
        assert [v["step"] for v in trials[0]["intermediate_values"]] == STEPS
    finally:
        server.stop()
        optuna.delete_study(study_name=name, storage=storage_of(study))


def test_journal_storage_shows_artifacts_of_finished_trials_in_the_dashboard(tmp_path):
    """A journal file cannot take late trial attributes; the dashboard still finds the artifact."""
    from wsgiref.simple_server import make_server

    import optuna_dashboard

    url = f"journal://{tmp_path / 'study.log'}"
    storage = open_storage(url, heartbeat=False)
    study = optuna.create_study(study_name="journal", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    card = tmp_path / "model_card.json"
    card.write_text('{"trial": 0}')
    artifact_id = attach_to_trial(study, 0, card, artifact_store(url))
    assert [m.artifact_id for m in trial_artifacts(study, 0)] == [artifact_id]
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage, artifact_store=artifact_store(url)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        study_id = storage.get_study_id_from_name("journal")
        trial = _get(f"{base}/api/studies/{study_id}?after=0")["trials"][0]
        assert [a["filename"] for a in trial["artifacts"]] == ["model_card.json"]
        assert _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{artifact_id}") == {"trial": 0}
    finally:
        server.shutdown()
        server.server_close()


def test_ctrl_c_stops_the_dashboard_cleanly(dashboard):
    status, stderr = dashboard.stop()
    assert status == 0, stderr
    assert "Traceback" not in stderr


def _cli(capsys, *args: str) -> SimpleNamespace:
    """The real CLI in this process (for errors only: a good call would serve until stopped)."""
    from tuner.cli import main

    status = main(list(args))
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=status, stdout=captured.out, stderr=captured.err)


def test_unknown_study_is_one_line_error(exported, capsys):
    result = _cli(capsys, "dashboard", "nosuchstudy", "--storage", exported.url, "--port", "0")
    assert_one_line_error(result, "no study named 'nosuchstudy'", "digits")


def test_missing_storage_file_is_one_line_error_and_creates_nothing(tmp_path, capsys):
    result = _cli(capsys, "dashboard", "--storage", f"sqlite:///{tmp_path / 'absent.db'}")
    assert_one_line_error(result, "no storage file", "--storage")
    assert not (tmp_path / "absent.db").exists()


def test_bad_port_is_one_line_error(exported, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _cli(capsys, "dashboard", "digits", "--storage", exported.url, "--port", str(taken.getsockname()[1]))
    assert_one_line_error(result, "cannot listen on 127.0.0.1:", "--port")


def test_on_another_host_the_dashboard_says_it_has_no_authentication_and_never_shows_the_password(tmp_path):
    server = Dashboard(None, "postgresql://postgres:S3cretPW@127.0.0.1:5432/test", tmp_path, host="0.0.0.0")
    try:
        assert server.printed[0].startswith("optuna-dashboard on postgresql://postgres:***@127.0.0.1")
    finally:
        _, stderr = server.stop()
    warnings = [line for line in stderr.splitlines() if "no authentication" in line]
    assert len(warnings) == 1 and "--host 127.0.0.1" in warnings[0]
    assert "S3cretPW" not in stderr + "".join(server.printed)
