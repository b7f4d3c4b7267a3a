"""`tuner dashboard` cannot be driven from another page: raw HTTP requests and a real browser.

A small study made with Optuna directly (one finished trial with an
artifact, two running) is served by `python -m tuner dashboard`, read-only
and with --allow-writes, in subprocesses on free ports. Every refused write
is checked where it would have landed: the study in its SQLite file, the
artifact on disk.
"""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from conftest import tuner_env
from optuna.trial import TrialState
from polling import wait_for

from tuner.dashboard.server import Guard, host_name
from tuner.storage.artifacts import attach_to_trial
from tuner.storage.storages import artifact_store

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TELL = {"state": "Complete", "values": [0.999]}


def _request(port: int, method: str, path: str, host: str | None = None, origin: str | None = None, body=None):
    """One raw request; returns (status, body text). `host` replaces the Host header a client would send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": f"127.0.0.1:{port}" if host is None else host}
    if origin:
        headers["Origin"] = origin
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


class Served:
    """`python -m tuner dashboard --storage URL --port 0 [--allow-writes]`, stopped by the test."""

    def __init__(self, url: str, cwd: Path, *flags: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner", "dashboard", "--storage", url, "--port", "0", *flags],
            cwd=cwd,
            env=tuner_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.printed = [self.process.stdout.readline().strip() for _ in range(2)]
        assert self.printed[1].startswith("Open http://127.0.0.1:"), (self.printed, self.process.poll())
        self.port = int(self.printed[1].split(":")[2].split("/")[0])
        self.origin = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: _request(self.port, "GET", "/api/meta")[0] == 200, timeout=60, what="the dashboard answering")

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=60)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One COMPLETE trial with a file attached, two RUNNING ones."""
    folder = tmp_path_factory.mktemp("guard")
    url = f"sqlite:///{folder / 'guarded.db'}"
    made = optuna.create_study(study_name="guarded", storage=url, direction="maximize")
    made.tell(made.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.5)
    running = [made.ask() for _ in range(2)]
    card = folder / "card.json"
    card.write_text('{"trial": 0}')
    artifact_id = attach_to_trial(made, 0, card, artifact_store(url))
    storage = optuna.storages.RDBStorage(url)
    return SimpleNamespace(
        folder=folder,
        url=url,
        study_id=storage.get_study_id_from_name("guarded"),
        finished_id=made.trials[0]._trial_id,
        running=[(trial.number, trial._trial_id) for trial in running],
        artifact_id=artifact_id,
    )


@pytest.fixture(scope="module")
def read_only(study):
    server = Served(study.url, study.folder)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def writable(study):
    server = Served(study.url, study.folder, "--allow-writes")
    yield server
    server.stop()


def _state(study, number: int) -> TrialState:
    return optuna.load_study(study_name="guarded", storage=study.url).trials[number].state


def _study_exists(study) -> bool:
    return "guarded" in optuna.get_all_study_names(study.url)


def _artifact_files(study) -> list[Path]:
    return [p for p in (study.folder / "guarded-artifacts").rglob("*") if p.is_file()]


@pytest.mark.slow
def test_a_cross_origin_tell_and_delete_are_refused_and_change_nothing(study, read_only, writable):
    number, trial_id = study.running[0]
    evil = "http://evil.example"
    for server in (read_only, writable):  # the origin check holds even where writes are allowed
        status, text = _request(server.port, "POST", f"/api/trials/{trial_id}/tell", origin=evil, body=TELL)
        assert status == 403 and "another page" in text, (status, text)
        status, text = _request(server.port, "DELETE", f"/api/studies/{study.study_id}", origin=evil)
        assert status == 403, (status, text)
        assert _request(server.port, "OPTIONS", f"/api/studies/{study.study_id}", origin=evil)[0] == 403
    assert _state(study, number) == TrialState.RUNNING and _study_exists(study) and _artifact_files(study)


@pytest.mark.slow
def test_read_only_refuses_every_write_even_from_its_own_page(study, read_only):
    number, trial_id = study.running[0]
    own = read_only.origin
    writes = [
        ("POST", f"/api/trials/{trial_id}/tell", TELL),
        ("POST", f"/api/trials/{trial_id}/user-attrs", {"user_attrs": {"x": 1}}),
        ("PUT", f"/api/studies/{study.study_id}/note", {"version": 1, "body": "hacked"}),
        ("PUT", f"/api/studies/{study.study_id}/{study.finished_id}/note", {"version": 1, "body": "hacked"}),
        ("DELETE", f"/api/artifacts/{study.study_id}/{study.finished_id}/{study.artifact_id}", None),
        ("DELETE", f"/api/studies/{study.study_id}", None),
        ("POST", "/api/studies", {"study_name": "new", "directions": ["maximize"]}),
        ("POST", f"/api/studies/{study.study_id}/rename", {"study_name": "renamed"}),
        ("POST", "/incompatible-rdb-schema", None),
    ]
    for method, path, body in writes:
        for origin in (own, None):  # a same-origin page, and a client that sends no Origin (curl)
            status, text = _request(read_only.port, method, path, origin=origin, body=body)
            assert status == 403 and "--allow-writes" in text, (method, path, status, text)
    assert _state(study, number) == TrialState.RUNNING and _study_exists(study)
    assert optuna.get_all_study_names(study.url) == ["guarded"] and _artifact_files(study)
    storage = optuna.storages.RDBStorage(study.url)  # where notes are kept
    notes = [storage.get_study_system_attrs(study.study_id), storage.get_trial(study.finished_id).system_attrs]
    assert "hacked" not in json.dumps(notes) and not storage.get_trial(trial_id).user_attrs


@pytest.mark.slow
def test_another_host_name_is_refused_and_its_own_names_are_served(study, read_only):
    port = read_only.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        status, text = _request(port, "GET", "/api/studies", host=host)
        assert status == 403 and "DNS rebinding" in text, (host, status, text)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost:9000"):  # 9000: an ssh tunnel's own port
        status, text = _request(port, "GET", "/api/studies", host=host)
        assert status == 200 and "guarded" in text, (host, status)
    status, page = _request(port, "GET", "/dashboard", origin=None)
    assert status == 200 and "<html" in page.lower()
    status, text = _request(port, "GET", f"/api/studies/{study.study_id}?after=0", origin=read_only.origin)
    assert status == 200 and len(json.loads(text)["trials"]) == 3
    status, text = _request(port, "HEAD", "/dashboard")
    assert status == 200


@pytest.mark.slow
def test_with_allow_writes_its_own_page_can_tell_a_trial(study, writable):
    number, trial_id = study.running[1]
    status, text = _request(writable.port, "POST", f"/api/trials/{trial_id}/tell", origin=writable.origin, body=TELL)
    assert status == 204, (status, text)
    trial = optuna.load_study(study_name="guarded", storage=study.url).trials[number]
    assert trial.state == TrialState.COMPLETE and trial.value == pytest.approx(0.999)
    assert "Writes allowed (--allow-writes)" in writable.process.stdout.readline()


def test_the_guard_reads_host_names_as_browsers_send_them():
    assert [host_name(h) for h in ("127.0.0.1:8080", "[::1]:8080", "LocalHost", "[::1]")] == [
        "127.0.0.1",
        "::1",
        "localhost",
        "::1",
    ]
    guard = Guard(lambda environ, start: [b"ok"], "0.0.0.0")
    reading = {"REQUEST_METHOD": "GET"}
    assert guard.refusal({**reading, "HTTP_HOST": "192.168.1.7:8080"}) is None  # bound everywhere: any IP
    assert guard.refusal({**reading, "HTTP_HOST": "evil.example:8080"}) is not None
    assert Guard(lambda environ, start: [b"ok"], "").refusal(reading) is not None  # no Host header at all
    local = Guard(lambda environ, start: [b"ok"], "127.0.0.1", allow_writes=True)
    assert local.refusal({**reading, "HTTP_HOST": "192.168.1.7:8080"}) is not None
    writing = {"REQUEST_METHOD": "POST", "HTTP_HOST": "127.0.0.1:8080", "HTTP_ORIGIN": "http://127.0.0.1:8080"}
    assert local.refusal(writing) is None
    assert local.refusal({**writing, "HTTP_SEC_FETCH_SITE": "cross-site"}) is not None


ATTACK_PAGE = """<!doctype html><title>loading</title><script>
const results = [];
async function attempt(name, url, init) {
  try { const r = await fetch(url, init); results.push(name + ":" + r.status); }
  catch (e) { results.push(name + ":blocked"); }
}
(async () => {
  const body = JSON.stringify(%(tell)s);
  for (const base of %(bases)s) {
    await attempt("tell-no-cors", base + "/api/trials/%(trial)d/tell",
                  {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body});
    await attempt("tell", base + "/api/trials/%(trial)d/tell",
                  {method: "POST", headers: {"Content-Type": "application/json"}, body});
    await attempt("delete", base + "/api/studies/%(study)d", {method: "DELETE"});
  }
  document.title = "done " + results.join(" ");
})();
</script>"""

SAME_ORIGIN_FETCH = """
const [method, path, body, done] = arguments;
fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body && JSON.stringify(body)})
  .then(r => done(r.status), e => done("blocked: " + e));
"""


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium/chromedriver")
def test_a_page_from_another_origin_or_a_rebound_name_cannot_change_the_study_in_chromium(study, read_only, writable):
    """Another site's page in headless Chromium: fetches from another origin, and from a DNS name rebound to 127.0.0.1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    number, trial_id = study.running[0]
    page = ATTACK_PAGE % {
        "tell": json.dumps(TELL),
        "bases": json.dumps([read_only.origin, writable.origin]),
        "trial": trial_id,
        "study": study.study_id,
    }

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--host-resolver-rules=MAP rebound.example 127.0.0.1")  # what DNS rebinding achieves
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_script_timeout(30)
    try:
        browser.get(f"http://127.0.0.1:{attacker.server_port}/attack.html")
        wait_for(lambda: browser.title.startswith("done"), timeout=60, what="the attacking page's script")
        outcomes = browser.title.split()[1:]
        assert len(outcomes) == 6 and not [o for o in outcomes if o.endswith(("204", "200"))], outcomes
        # after rebinding, the other site's script runs at http://rebound.example:PORT, the dashboard's own port
        for server in (read_only, writable):
            browser.get(f"http://rebound.example:{server.port}/dashboard")
            assert "DNS rebinding" in browser.find_element(By.TAG_NAME, "body").text
            tell = browser.execute_async_script(SAME_ORIGIN_FETCH, "POST", f"/api/trials/{trial_id}/tell", TELL)
            delete = browser.execute_async_script(SAME_ORIGIN_FETCH, "DELETE", f"/api/studies/{study.study_id}", None)
            assert (tell, delete) == (403, 403)
        # the control: the dashboard's own page loads, and with --allow-writes its own script could write
        browser.get(f"{writable.origin}/dashboard")
        wait_for(lambda: "guarded" in browser.find_element(By.TAG_NAME, "body").text, timeout=60, what="the study list")
        assert browser.execute_async_script(SAME_ORIGIN_FETCH, "GET", "/api/studies", None) == 200
        status = browser.execute_async_script(SAME_ORIGIN_FETCH, "POST", f"/api/trials/{trial_id}/user-attrs", {})
        assert status != 403  # passed the guard (optuna-dashboard answers the empty request itself)
    finally:
        browser.quit()
        attacker.shutdown()
    assert _state(study, number) == TrialState.RUNNING and _study_exists(study) and _artifact_files(study)
