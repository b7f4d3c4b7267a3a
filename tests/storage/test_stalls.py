"""A database that freezes, not only one that refuses: bounded waits, stalls as outages, no live trial reaped.

Each test starts its own throwaway PostgreSQL or MariaDB server
(benchmarks/throwaway_postgres.py, benchmarks/throwaway_mariadb.py: a
temporary folder, a free port) and crashes it (SIGKILL) or freezes it
(SIGSTOP, then SIGCONT); the machine's own database services are never
touched. The storage proxy's lock is tested against a flood of lock names
and a holder that stops renewing its lease.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time

import optuna
import pytest
from conftest import tuner_env
from optuna.trial import TrialState
from polling import wait_for
from worker_studies import assert_quota_met_once_each, enqueue_probes

from benchmarks import throwaway_mariadb, throwaway_postgres
from tuner.search.strategy import Job
from tuner.storage.lock import LockTimeout, study_lock, try_study_lock
from tuner.storage.outages import Outages, StorageOutage, is_outage
from tuner.storage.timeouts import CLIENT_MARGIN, STATEMENT_TIMEOUT

BOUND = STATEMENT_TIMEOUT + CLIENT_MARGIN  # the longest a single wait for a frozen server lasts
WORST = 2 * BOUND  # a call's worst: its pooled connection's ping, then a new connection's handshake, each bounded
STUDY = ["--folds", "2", "--epochs", "2", "--subset", "300", "--no-progress"]
BASELINES = "seed000-v1,seed000-v2,seed000-v3"


@pytest.fixture(params=["postgres", "mariadb"])
def server(request):
    """A throwaway server: `.url(password)`, `.kill()`, `.start()`, `.freeze()`, `.thaw()`."""
    kind = throwaway_postgres if request.param == "postgres" else throwaway_mariadb
    if not kind.available():
        pytest.skip(f"{request.param}'s server programs are not installed")
    made = throwaway_postgres.ThrowawayPostgres() if request.param == "postgres" else throwaway_mariadb.ThrowawayMariaDB()
    with made as running:
        yield running


def _create(url: str, name: str) -> None:
    optuna.create_study(storage=url, study_name=name, direction="maximize")


# --- bounded waits


@pytest.mark.slow
def test_a_frozen_server_is_an_outage_that_is_ridden_out(server):
    """A call to a frozen server fails within its bound, counts as an outage from its start, and lands after SIGCONT."""
    from tuner.storage.storages import open_storage

    said: list[str] = []
    url = server.url(password="s3cret")
    outages = Outages(url, limit=120, say=said.append)
    storage = open_storage(url, heartbeat=False, outages=outages)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "frozen")
    server.freeze()
    frozen = time.monotonic()
    answered: dict = {}
    # (user attributes: a call that always reaches the server; Optuna's cache answers a study's name itself)
    caller = threading.Thread(target=lambda: answered.update(attrs=storage.get_study_user_attrs(study_id)))
    caller.start()
    wait_for(lambda: said, timeout=WORST + 10, what="the call meeting the freeze")
    noticed = time.monotonic() - frozen
    assert noticed <= WORST + 3, noticed  # not forever: within the timeouts
    assert "unreachable" in said[0] and "s3cret" not in said[0] and ":***@127.0.0.1" in said[0], said
    assert caller.is_alive() and not answered
    time.sleep(2)
    server.thaw()
    caller.join(timeout=60)
    assert answered == {"attrs": {}}
    assert len(said) == 2 and "reachable again after" in said[1], said
    down = int(said[1].split("after ")[1].rstrip("s"))
    assert down >= noticed - 1, (down, noticed)  # the outage counts from the call that met the freeze
    print(f"noticed the freeze after {noticed:.1f}s: {said}")


@pytest.mark.slow
def test_a_freeze_past_the_limit_gives_up_within_the_limit_and_the_statement_timeout(server):
    from tuner.storage.storages import open_storage

    url = server.url()
    outages = Outages(url, limit=3, say=lambda text: None)
    storage = open_storage(url, heartbeat=False, outages=outages)
    storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "limit")
    server.freeze()
    started = time.monotonic()
    with pytest.raises(StorageOutage) as raised:
        storage.get_all_studies()
    waited = time.monotonic() - started
    assert 3 <= waited <= WORST + 3, waited
    assert "--outage-limit 3s" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.slow
def test_lock_waits_are_bounded(server, tmp_path):
    """Held elsewhere, the study lock is waited for `wait` seconds at most (an outage), and tried without waiting."""
    for url in (server.url(), f"journal:///{tmp_path / 'study.log'}"):
        holding, release = threading.Event(), threading.Event()

        def hold(url=url, holding=holding, release=release):
            with study_lock(url, "bounded"):
                holding.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(30)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as raised, study_lock(url, "bounded", wait=1):
            pass
        assert 1 <= time.monotonic() - started < 1 + BOUND, url
        assert is_outage(raised.value)
        started = time.monotonic()
        with try_study_lock(url, "bounded") as held:
            assert held is False and time.monotonic() - started < 2
        release.set()
        holder.join()
        with try_study_lock(url, "bounded") as held:
            assert held is True


# --- heartbeats and reaping


def _shared(url: str, name: str, worker: str, monkeypatch):
    from tuner.distributed.shared_study import SharedStudy

    monkeypatch.setenv("TUNER_WORKER_ID", worker)
    shared = SharedStudy(url, name, heartbeat=1, grace=5, outage_limit=120, say=lambda text: None)
    shared.join(lambda storage: optuna.load_study(storage=storage, study_name=name))
    return shared


@pytest.mark.slow
def test_a_heartbeat_never_waits_behind_the_study_lock(server, monkeypatch):
    from tuner.storage.optuna_compat import heartbeat_stale_ids, study_id_of

    url = server.url()
    _create(url, "beats")
    shared = _shared(url, "beats", "beater", monkeypatch)
    trial = shared.claim(lambda study: Job.RUN)
    with shared.beating(trial), study_lock(url, "beats"):  # someone else's claim holds the lock for a while
        started = time.monotonic()
        shared.reap()
        assert time.monotonic() - started < 2  # tried the lock, found it taken, did not wait
        time.sleep(4)
        assert heartbeat_stale_ids(shared.storage, study_id_of(shared.study), 2) == []  # beat all along


@pytest.mark.slow
def test_no_live_trial_is_reaped_after_a_stall_shorter_than_the_statement_timeout(server, monkeypatch):
    """A freeze longer than the grace period but answered late (no error): live trials live, a dead one is reaped.

    Two live workers beat through it (and see their beats stall); a third,
    idle through the freeze, reaps right after it, judging heartbeats by the
    grace period plus the time it saw nothing of the database.
    """
    url = server.url()
    _create(url, "stall")
    dead = _shared(url, "stall", "dead", monkeypatch)
    dead.claim(lambda study: Job.RUN)  # claimed (one heartbeat), never beats again
    live = [_shared(url, "stall", f"live-{i}", monkeypatch) for i in range(2)]
    trials = [shared.claim(lambda study: Job.RUN) for shared in live]
    reaper = _shared(url, "stall", "reaper", monkeypatch)
    with live[0].beating(trials[0]), live[1].beating(trials[1]):
        server.freeze()
        time.sleep(STATEMENT_TIMEOUT - 2)  # longer than the grace, shorter than any timeout: no error, a stall
        server.thaw()
        assert reaper.claim(lambda study: Job.WAIT) is Job.WAIT  # a claim that finds no slot reaps
        states = [t.state for t in _trials(url, "stall")]  # trial 0 the dead worker's, 1 and 2 the live ones'
        assert states[1:3] == [TrialState.RUNNING] * 2, states  # their heartbeats: 8 s old
        time.sleep(1 + 2 * 8 + 3)  # the live workers' own reaping resumes a while after the stall
        assert reaper.claim(lambda study: Job.WAIT) is Job.WAIT
        states = [t.state for t in _trials(url, "stall")]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING, TrialState.WAITING], states  # re-queued


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


# --- two worker processes through a crash and a freeze


class _Worker:
    """`tuner worker` in a subprocess; its output read as it comes (`said`), so a test can wait on a line."""

    def __init__(self, url: str, *flags: str, cwd, worker_id: str):
        command = [sys.executable, "-m", "tuner", "worker", "digits", "--storage", url, "--study-name", "stalls"]
        self.process = subprocess.Popen(
            [*command, *STUDY, *flags],
            cwd=cwd,
            env=tuner_env({"TUNER_WORKER_ID": worker_id}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=lambda: self.out.extend(self.process.stdout or ()), daemon=True),
            threading.Thread(target=lambda: self.err.extend(self.process.stderr or ()), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def poll(self) -> int | None:
        return self.process.poll()

    def said(self, text: str) -> int:
        return sum(text in line for line in list(self.out))

    def finish(self, timeout: float) -> tuple[int, str, str]:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code, "".join(self.out), "".join(self.err)


def _mid_study(url: str, workers: list[_Worker], running: int = 2):
    def ready():
        states = collections.Counter(t.state.name for t in _trials(url, "stalls"))
        return states["RUNNING"] >= running and states

    def a_worker_ended() -> str | None:  # with what it last said: the reason is the one clue a flaky run leaves
        ended = [w for w in workers if w.poll() is not None]
        if not ended:
            return None
        last = "".join(ended[0].out[-6:] + ended[0].err[-6:])[-1500:]
        return f"a worker ended early (exit {ended[0].poll()}), its last lines: {last!r}"

    return wait_for(ready, timeout=300, interval=0.3, what=f"{running} trials running", give_up=a_worker_ended)


@pytest.mark.slow
def test_two_workers_ride_out_a_crash_and_a_freeze(tmp_path, server):
    """Each outage longer than the grace period: the quota is met once each, no live trial reaped, one line each way.

    A claim the crash cut short (a trial asked for, no worker recorded yet) is
    abandoned by its worker, which claims again; it is reaped as an orphan.
    """

    url = server.url(password="s3cret")
    enqueue_probes(url, "stalls", 3, epochs=2)  # + 3 baselines = the quota of 6
    flags = ["--trials", "6", "--baselines", BASELINES, "--heartbeat", "1", "--grace", "5", "--outage-limit", "120"]
    workers = [_Worker(url, *flags, cwd=tmp_path, worker_id=f"w{i}") for i in range(2)]
    started = time.monotonic()
    _mid_study(url, workers)
    server.kill()
    crashed = time.monotonic()
    time.sleep(8)
    server.start()
    wait_for(lambda: all(w.said("reachable again") == 1 for w in workers), timeout=60, what="both workers back")
    _mid_study(url, workers)
    server.freeze()
    frozen = time.monotonic()
    time.sleep(WORST + 6)  # long enough for any call to fail (an outage, not a late answer), longer than the grace
    server.thaw()
    thawed = time.monotonic()
    outputs = [w.finish(timeout=600) for w in workers]
    print(
        f"crashed at {crashed - started:.0f}s for 8s, frozen at {frozen - started:.0f}s for {thawed - frozen:.0f}s, "
        f"done at {time.monotonic() - started:.0f}s"
    )
    for code, out, err in outputs:
        print(out, err)
        assert code == 0, out + err
        assert "Traceback" not in err and "s3cret" not in out + err
        assert out.count("unreachable (") == 2 and out.count("reachable again after") == 2, out  # per outage, once
        reaped = [line for line in out.splitlines() if "has no live worker" in line]
        assert all("(no worker)" in line for line in reaped), reaped  # only claims the crash cut short, never a live trial
    trials = _trials(url, "stalls")
    assert_quota_met_once_each(trials, 6)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert not [t for t in failed if "worker" in t.user_attrs]  # a trial a worker ran was never failed
    assert not [t for t in trials if t.state == TrialState.WAITING]
    assert len(trials) == 6 + len(failed), [(t.number, t.state.name) for t in trials]  # each orphan re-run once


@pytest.mark.slow
def test_a_freeze_past_the_outage_limit_ends_the_workers_in_one_line(tmp_path, server):

    url = server.url(password="s3cret")
    enqueue_probes(url, "stalls", 3, epochs=2)
    flags = ["--trials", "6", "--baselines", BASELINES, "--heartbeat", "1", "--grace", "5", "--outage-limit", "5"]
    workers = [_Worker(url, *flags, cwd=tmp_path, worker_id=f"w{i}") for i in range(2)]
    _mid_study(url, workers)
    server.freeze()
    frozen = time.monotonic()
    try:
        ended = []
        for worker in workers:
            code, out, err = worker.finish(timeout=120)
            ended.append(time.monotonic() - frozen)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1, (code, out, err)
            assert "--outage-limit 5s" in lines[0] and ":***@127.0.0.1" in lines[0] and "s3cret" not in out + err
    finally:
        server.thaw()
    assert max(ended) <= 5 + WORST + 10, ended  # about the limit plus the timeouts of one call
    print(f"the workers ended {ended} s after the freeze")


# --- the storage proxy's lock: bounded, leased, fenced


@pytest.fixture
def postgres():
    if not throwaway_postgres.available():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    with throwaway_postgres.ThrowawayPostgres() as running:
        yield running


def _lock_connections(url: str) -> int:
    """Connections of the database that hold an advisory lock now."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        query = "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        return int(connection.execute(sqlalchemy.text(query)).scalar())


@pytest.mark.slow
def test_the_proxy_lock_cannot_be_exhausted_and_expires_on_its_own(postgres):
    """A flood of lock names is refused past the bound (an outage to workers); leases end without anyone asking."""
    import grpc

    from tuner.storage.proxy import ProxyClient
    from tuner.storage.proxy_server import make_proxy

    server, port = make_proxy(postgres.url(), port=0, lease=2, max_locks=8)
    try:
        client = ProxyClient("127.0.0.1", port)
        grants = [client.call("Lock", study=f"flood-{i}", holder=f"h{i}") for i in range(8)]
        assert all(g["granted"] for g in grants) and _lock_connections(postgres.url()) == 8
        with pytest.raises(grpc.RpcError) as refused:
            client.call("Lock", study="flood-8", holder="h8")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and is_outage(refused.value)
        assert "holds 8 study locks, its most" in refused.value.details()
        assert _lock_connections(postgres.url()) == 8  # the refusal took no connection
        wait_for(lambda: _lock_connections(postgres.url()) == 0, timeout=6, what="the leases ending on their own")
        with client.lock("flood-8", wait=5) as held:
            assert held
    finally:
        server.stop(grace=None)


@pytest.mark.slow
def test_a_stalled_proxy_lock_holder_loses_the_lock_and_cannot_release_the_next(postgres):
    from tuner.storage.proxy import ProxyClient
    from tuner.storage.proxy_server import make_proxy

    server, port = make_proxy(postgres.url(), port=0, lease=2, max_locks=8)
    try:
        client = ProxyClient("127.0.0.1", port)
        with client.lock("renewed", wait=1) as held:  # a live holder renews its lease: kept past it
            assert held
            time.sleep(5)
            with client.lock("renewed", wait=1) as other:
                assert other is False
        stalled = client.call("Lock", study="leased", holder="stalled")  # then it stops renewing (frozen)
        assert stalled["granted"]
        with try_study_lock(postgres.url(), "leased") as direct:
            assert direct is False  # the proxy holds the database's lock for it: direct workers are kept out too
        started = time.monotonic()
        with client.lock("leased", wait=10) as held:
            assert held and 1 <= time.monotonic() - started < 5  # granted once the lease ran out
            token = stalled["token"]
            assert client.call("Renew", study="leased", holder="stalled", token=token) == {"held": False}
            assert client.call("Unlock", study="leased", holder="stalled", token=token) == {"released": False}
            with client.lock("leased", wait=0.5) as third:
                assert third is False  # the late release released nothing: still ours
    finally:
        server.stop(grace=None)


@pytest.mark.slow
def test_a_frozen_storage_proxy_is_an_outage(postgres, tmp_path):
    """Calls to a SIGSTOPped `tuner storage-proxy`, Optuna's included, end by their deadline and are retried."""
    import signal

    from tuner.distributed.shared_study import SharedStudy
    from tuner.storage.proxy import CALL_TIMEOUT

    port = throwaway_postgres.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner", "storage-proxy", "--storage", postgres.url(), "--port", str(port)],
        cwd=tmp_path,
        env=tuner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"grpc://127.0.0.1:{port}"
        said: list[str] = []
        shared = wait_for(
            lambda: SharedStudy(url, "proxied", heartbeat=1, grace=5, outage_limit=120, say=said.append),
            timeout=60,
            what="the proxy listening",
        )
        shared.join(lambda storage: optuna.create_study(storage=storage, study_name="proxied", direction="maximize"))
        trial = shared.claim(lambda study: Job.RUN)
        process.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        told: dict = {}
        teller = threading.Thread(target=lambda: told.update(frozen=shared.tell(trial, 0.5, TrialState.COMPLETE)))
        teller.start()
        wait_for(lambda: said, timeout=CALL_TIMEOUT + 10, what="the tell meeting the frozen proxy")
        assert time.monotonic() - frozen < CALL_TIMEOUT + 3 and "unreachable" in said[0], said
        process.send_signal(signal.SIGCONT)
        teller.join(timeout=60)
        assert told["frozen"].state == TrialState.COMPLETE and "reachable again" in said[-1], said
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.communicate()
