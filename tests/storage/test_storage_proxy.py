"""`tuner storage-proxy`: workers share a study through Optuna's gRPC proxy, with heartbeats and the study lock.

Each test starts its own throwaway PostgreSQL server behind the proxy
(benchmarks/throwaway_postgres.py), so stopping it never touches the
machine's own database.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest
from conftest import assert_one_line_error, run_tuner, tuner_env
from optuna.trial import TrialState
from polling import ended, wait_for
from worker_studies import enqueue_probes

from benchmarks import throwaway_postgres

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TINY = ["--folds", "2", "--epochs", "1", "--subset", "300", "--no-progress"]


@pytest.fixture
def postgres():
    if not throwaway_postgres.available():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    with throwaway_postgres.ThrowawayPostgres() as server:
        yield server


@pytest.fixture
def proxy(postgres, tmp_path):
    """`tuner storage-proxy` on a free port in front of the throwaway server; yields (process, grpc URL)."""
    port = throwaway_postgres.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner", "storage-proxy", "--storage", postgres.url(password="s3cret"), "--port", str(port)],
        cwd=tmp_path,
        env=tuner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"grpc://127.0.0.1:{port}"
    wait_for(lambda: _answers(url) or process.poll() is not None, timeout=60, what="the proxy listening")
    assert process.poll() is None, process.communicate()
    yield process, url
    if process.poll() is None:
        process.kill()
        process.communicate()


def _answers(url: str) -> bool:
    from tuner.storage.storages import open_storage

    try:
        open_storage(url)
        return True
    except Exception:
        return False


def _worker(url: str, name: str, *flags: str, cwd, worker_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", "worker", "digits", "--storage", url, "--study-name", name, *TINY, *flags],
        cwd=cwd,
        env=tuner_env({"TUNER_WORKER_ID": worker_id}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_workers_behind_the_proxy_share_the_quota_and_a_dead_workers_trial_is_requeued(tmp_path, postgres, proxy):

    process, url = proxy
    enqueue_probes(url, "behind", 3)  # + seed000-v1 = the quota of 4
    flags = ["--trials", "4", "--baselines", "seed000-v1", "--heartbeat", "1", "--grace", "5"]
    victim = _worker(url, "behind", *flags, cwd=tmp_path, worker_id="victim")
    survivor = _worker(url, "behind", *flags, cwd=tmp_path, worker_id="survivor")
    storage = _open(url)

    def victims_trial():
        trials = optuna.load_study(study_name="behind", storage=storage).get_trials(deepcopy=False)
        return next(
            ((t.number,) for t in trials if t.state == TrialState.RUNNING and t.user_attrs["worker"] == "victim"), None
        )

    [killed] = wait_for(victims_trial, timeout=300, what="the victim running a trial", give_up=ended(victim))
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    output, _ = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, output
    direct = optuna.load_study(study_name="behind", storage=postgres.url())  # what the database holds
    trials = {t.number: t for t in direct.get_trials(deepcopy=False)}
    assert trials[killed].state == TrialState.FAIL  # failed by the heartbeats the proxy recorded
    [retry] = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert retry.state in FINISHED and retry.user_attrs["worker"] == "survivor"
    assert sum(t.state in FINISHED for t in trials.values()) == 4
    assert not [t for t in trials.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert "trial quota met: 4 of 4" in output

    process.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "storage proxy for postgresql+psycopg://postgres:***@127.0.0.1" in out and "stopped" in out
    assert "s3cret" not in out + err and "Traceback" not in err


def _open(url: str):
    from tuner.storage.storages import open_storage

    return open_storage(url, heartbeat=False)


@pytest.mark.slow
def test_a_tell_through_the_proxy_waits_out_a_database_restart(postgres):
    """The proxy answers UNAVAILABLE while its database is down; the worker retries until it is back."""
    from tuner.distributed.shared_study import SharedStudy
    from tuner.search.strategy import Job
    from tuner.storage.proxy_server import make_proxy

    server, port = make_proxy(postgres.url(), port=0)
    try:
        said: list[str] = []
        shared = SharedStudy(f"grpc://127.0.0.1:{port}", "restart", heartbeat=1, grace=5, say=said.append)
        shared.join(lambda storage: optuna.create_study(storage=storage, study_name="restart", direction="maximize"))
        trial = shared.claim(lambda study: Job.RUN)
        assert isinstance(trial, optuna.Trial)
        postgres.stop("immediate")
        told: dict = {}
        teller = threading.Thread(target=lambda: told.update(frozen=shared.tell(trial, 0.5, TrialState.COMPLETE)))
        teller.start()
        wait_for(lambda: any("unreachable" in line for line in said), timeout=30, what="the tell meeting the outage")
        time.sleep(2)
        assert teller.is_alive() and not told
        postgres.start()
        teller.join(timeout=60)
        assert told["frozen"].state == TrialState.COMPLETE
        [stored] = optuna.load_study(study_name="restart", storage=postgres.url()).trials
        assert stored.state == TrialState.COMPLETE and stored.value == 0.5
    finally:
        server.stop(grace=None)


@pytest.mark.slow
def test_storage_proxy_bad_input_is_one_line(tmp_path, postgres):
    cases = [
        (["--storage", "sqlite:///x.db"], "serves a PostgreSQL or MySQL database"),
        (["--storage", "postgresql://who:s3cret@127.0.0.1:1/none"], "cannot open storage postgresql://who:***@"),
    ]
    for flags, fragment in cases:
        result = run_tuner("storage-proxy", *flags, cwd=tmp_path, timeout=60)
        assert_one_line_error(result, fragment)
        assert "s3cret" not in result.stderr
    with socket_in_use() as port:
        result = run_tuner("storage-proxy", "--storage", postgres.url(), "--port", str(port), cwd=tmp_path, timeout=60)
        assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "--port")
    nobody = throwaway_postgres.free_port()
    result = run_tuner("worker", "digits", "--storage", f"grpc://127.0.0.1:{nobody}", *TINY, cwd=tmp_path, timeout=120)
    assert_one_line_error(result, f"no storage proxy answers at grpc://127.0.0.1:{nobody}", "tuner storage-proxy")


class socket_in_use:
    """A port that something listens on, for the `with` block."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        return int(self.socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
