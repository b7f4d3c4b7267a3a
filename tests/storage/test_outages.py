"""Database outages: retries with backoff, the outage limit, and workers that ride out a real server restart.

The slow tests start their own throwaway PostgreSQL server
(benchmarks/throwaway_postgres.py: a temporary folder, a free port) and stop
it mid-study; the machine's own database services are never touched.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time

import optuna
import pytest
import sqlalchemy
from conftest import MACHINE_POSTGRES, assert_one_line_error, require_database, tuner_env
from optuna.trial import TrialState
from polling import ended, wait_for
from worker_studies import FINISHED, assert_quota_met_once_each, enqueue_probes

from benchmarks import throwaway_postgres
from tuner.storage.optuna_compat import heartbeat_enabled
from tuner.storage.outages import Outages, StorageOutage, cannot_reach, is_outage

REFUSED = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/none"  # nothing listens on port 1
BASELINES = "seed000-v1,seed000-v2,seed000-v3"
STUDY = ["--folds", "2", "--epochs", "2", "--subset", "300", "--no-progress"]
# trials that report for seconds, not one: the restart must meet a trial mid-training (with STUDY's three trials of
# about 3 s, a loaded CI machine once saw none reporting between two polls before the run ended)
LONGER_TRIALS = ["--folds", "2", "--epochs", "12", "--subset", "300", "--no-progress"]


def _refused() -> Exception:
    """A real connection error, as a driver raises it when the server is down."""
    try:
        sqlalchemy.create_engine(REFUSED, connect_args={"connect_timeout": 2}).connect()
    except Exception as error:
        return error
    raise AssertionError("something listens on port 1")


def _broken_transaction() -> Exception:
    """How Optuna reports a connection lost mid-transaction: its own error, caused by any SQLAlchemy error."""
    broken = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    broken.__cause__ = sqlalchemy.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back.")
    return broken


def _flaky(failures: int, error: Exception):
    calls = []

    def call(value):
        calls.append(value)
        if len(calls) <= failures:
            raise error
        return value

    return call, calls


# --- the retry itself (fast: a refused connection is a real outage, and immediate)


def test_a_call_is_retried_until_the_database_answers():
    said = []
    outages = Outages(REFUSED, limit=30, say=said.append)
    assert outages.seconds_since_back() == float("inf")
    call, calls = _flaky(2, _refused())
    during = []  # what a section that reaps sees in the attempt that succeeds: still the outage
    assert outages.retrying(lambda value: during.append(outages.seconds_since_back()) or call(value), 42) == 42
    assert len(calls) == 3
    assert len(said) == 2 and "unreachable" in said[0] and "reachable again" in said[1], said
    assert "s3cret" not in " ".join(said) and "postgres:***@127.0.0.1:1" in said[0]
    assert during == [float("inf"), 0.0, 0.0] and outages.seconds_since_back() < 5


def test_an_outage_longer_than_the_limit_gives_up_in_one_masked_line():
    outages = Outages(REFUSED, limit=0.2, say=lambda text: None)
    call, calls = _flaky(10**6, _refused())
    started = time.monotonic()
    with pytest.raises(StorageOutage) as raised:
        outages.retrying(call, 1)
    message = str(raised.value)
    assert "\n" not in message and "s3cret" not in message
    assert "postgresql+psycopg://postgres:***@127.0.0.1:1/none" in message
    assert "--outage-limit 0.2s" in message and "re-queued" in message
    assert time.monotonic() - started < 5
    tried = len(calls)
    with pytest.raises(StorageOutage):  # once given up, every later call fails at once, untried
        outages.retrying(call, 1)
    assert len(calls) == tried


def test_answers_are_not_retried():
    outages = Outages(REFUSED, limit=30, say=lambda text: None)
    for answer in (KeyError("no such trial"), optuna.exceptions.UpdateFinishedTrialError("finished"), ValueError("x")):
        call, calls = _flaky(1, answer)
        with pytest.raises(type(answer)):
            outages.retrying(call, 1)
        assert len(calls) == 1
    assert is_outage(optuna.exceptions.StorageInternalError("wrapped")) is False
    wrapped = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    wrapped.__cause__ = _refused()
    assert is_outage(wrapped)  # how RDBStorage reports a lost connection


def test_a_broken_transaction_is_an_outage_only_while_the_database_does_not_answer(tmp_path):
    """A connection lost mid-transaction can surface as any SQLAlchemy error; the database itself tells."""
    broken = _broken_transaction()
    assert not is_outage(broken)
    assert cannot_reach(broken, REFUSED)
    assert not cannot_reach(broken, f"sqlite:///{tmp_path / 'up.db'}")  # answers: a real error, raised at once
    assert not cannot_reach(KeyError("no such trial"), REFUSED)  # not from the storage layer: never an outage


def test_a_broken_transaction_on_a_database_that_answers_is_no_outage():
    """A plain postgresql:// URL is probed with the installed driver: the machine's server answers, so a real error."""
    require_database(MACHINE_POSTGRES)
    assert not cannot_reach(_broken_transaction(), MACHINE_POSTGRES.replace("+psycopg", ""))


def test_only_the_outermost_call_retries():
    """A section retried as a whole (under the study lock) never retries its inner calls one by one."""
    outages = Outages(REFUSED, limit=30, say=lambda text: None)
    inner, inner_calls = _flaky(1, _refused())
    sections = []

    def section():
        sections.append(1)
        return outages.retrying(inner, 7)

    assert outages.retrying(section) == 7
    assert len(sections) == 2 and len(inner_calls) == 2


def test_a_guarded_storage_wraps_the_databases_storage_without_changing_it_and_keeps_its_heartbeats(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=5, grace_period=10)
    before = dict(vars(storage))
    guarded = Outages(REFUSED, limit=30, say=lambda text: None).guard(storage)
    assert guarded is not storage and vars(storage) == before  # nothing replaced on the library's object
    assert heartbeat_enabled(guarded) and guarded.get_heartbeat_interval() == 5
    study = optuna.create_study(storage=guarded)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert [t.state for t in optuna.load_study(study_name=study.study_name, storage=storage).trials] == [
        TrialState.COMPLETE
    ] * 2  # written through to the database


def test_a_guarded_storage_retries_a_call_through_an_outage_and_gives_up_at_the_limit(tmp_path):
    """A storage whose database is unreachable for a while: the guard waits it out, then reports an outage."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    said: list[str] = []
    failures = [_refused()] * 2

    class Flaky(optuna.storages.RDBStorage):
        def get_study_user_attrs(self, study_id):
            if failures:
                raise failures.pop()
            return super().get_study_user_attrs(study_id)

    flaky = Flaky(f"sqlite:///{tmp_path / 's.db'}")
    guarded = Outages(REFUSED, limit=30, say=said.append).guard(flaky)
    assert guarded.get_study_user_attrs(study_id) == {} and not failures
    assert any("unreachable" in line for line in said) and any("reachable again" in line for line in said)
    failures.extend([_refused()] * 10**6)  # now for longer than the limit
    impatient = Outages(REFUSED, limit=0.3, say=said.append).guard(flaky)
    began = time.monotonic()
    with pytest.raises(StorageOutage, match=r"unreachable for \d+s, longer than --outage-limit 0.3s"):
        impatient.get_study_user_attrs(study_id)
    assert time.monotonic() - began < 5  # given up at the limit, not retried on


# --- real outages of a throwaway PostgreSQL server (slow: workers train, the server stops and starts)


@pytest.fixture
def postgres():
    if not throwaway_postgres.available():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    with throwaway_postgres.ThrowawayPostgres() as server:
        yield server


def _worker(url: str, *flags: str, cwd, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", "worker", "digits", "--storage", url, "--study-name", "outage", *STUDY, *flags],
        cwd=cwd,
        env=tuner_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="outage", storage=url).get_trials(deepcopy=False)


def _states(url: str) -> collections.Counter:
    return collections.Counter(t.state.name for t in _trials(url))


@pytest.mark.slow
def test_three_workers_ride_out_a_database_restart(tmp_path, postgres):
    """The server stops (a crash) while trials run and comes back 15 s later: every trial runs once, none is lost."""

    from tuner.distributed import worker_devices as devices

    url = postgres.url(password="s3cret")  # trust authentication ignores it; every message must mask it
    enqueue_probes(url, "outage", 3, epochs=2)  # + 3 baselines = the quota of 6
    beats = ["--heartbeat", "2", "--grace", "8"]  # an outage longer than the grace: no live trial may be reaped
    flags = ["--trials", "6", "--baselines", BASELINES, *beats]
    started = time.monotonic()
    workers = [_worker(url, *flags, cwd=tmp_path, env=devices.worker_env(i, 3)) for i in range(3)]

    def mid_study():
        states = _states(url)
        return states["COMPLETE"] + states["PRUNED"] >= 2 and states["RUNNING"] >= 2 and states

    before = wait_for(
        mid_study, timeout=300, interval=0.5, what="two trials finished and two running", give_up=ended(*workers)
    )
    postgres.stop("immediate")
    stopped = time.monotonic()
    time.sleep(15)  # the outage itself: the workers' retries are what is under test
    alive_during_outage = [w.poll() is None for w in workers]
    postgres.start()
    restarted = time.monotonic()
    outputs = [w.communicate(timeout=600) for w in workers]
    done = time.monotonic()
    print(
        f"timeline: stopped at {stopped - started:.1f}s with {dict(before)}, restarted at {restarted - started:.1f}s "
        f"({restarted - stopped:.1f}s down), workers done at {done - started:.1f}s"
    )
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, out + err
        assert "Traceback" not in err and "s3cret" not in out + err
    joined = "".join(out for out, _ in outputs)
    print(joined, "".join(err for _, err in outputs))
    assert alive_during_outage == [True] * 3
    assert joined.count("unreachable (") >= 3 and joined.count("reachable again after") >= 3, joined
    assert "postgres:***@127.0.0.1" in joined
    assert "failed as stale" not in joined  # after the outage every live worker beat again before anyone reaped
    trials = _trials(url)
    assert_quota_met_once_each(trials, 6)
    assert not [t for t in trials if t.state == TrialState.WAITING]
    # nothing lost, nothing run twice: beyond the quota only orphans, claims the outage cut short (asked for, no worker
    # recorded, nothing trained), each failed and its parameters retried
    orphans = [t for t in trials if t.state not in FINISHED]
    assert len(trials) == 6 + len(orphans), [(t.number, t.state.name) for t in trials]
    for orphan in orphans:
        assert orphan.state == TrialState.FAIL and "worker" not in orphan.user_attrs, orphan
        assert not orphan.intermediate_values, orphan
        assert [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number and t.state in FINISHED]
    finished = [t for t in trials if t.state in FINISHED]
    assert all("worker" in t.user_attrs for t in finished), finished
    print("finished per worker:", collections.Counter(t.user_attrs["worker"] for t in finished))


@pytest.mark.slow
def test_a_finished_trials_result_is_told_once_the_database_is_back(postgres):
    """`tell` during an outage waits for the database and lands: the result is not dropped as "stale"."""
    from tuner.distributed.shared_study import SharedStudy
    from tuner.search.strategy import Job

    said: list[str] = []
    url = postgres.url()
    shared = SharedStudy(url, "outage", heartbeat=1, grace=5, outage_limit=120, say=said.append)

    def setup(storage):
        return optuna.create_study(storage=storage, study_name="outage", direction="maximize")

    shared.join(setup)
    trial = shared.claim(lambda study: Job.RUN)
    assert isinstance(trial, optuna.Trial)
    trial.report(0.5, 0)
    postgres.stop("immediate")
    told: dict = {}
    teller = threading.Thread(target=lambda: told.update(frozen=shared.tell(trial, 0.75, TrialState.COMPLETE)))
    teller.start()
    wait_for(lambda: any("unreachable" in line for line in said), timeout=30, what="the tell meeting the outage")
    time.sleep(3)  # still down: the tell must be waiting, not failing
    assert teller.is_alive() and not told
    postgres.start()
    teller.join(timeout=60)
    assert told["frozen"] is not None and told["frozen"].state == TrialState.COMPLETE
    [stored] = _trials(url)
    assert stored.state == TrialState.COMPLETE and stored.value == 0.75 and stored.intermediate_values == {0: 0.5}
    assert any("reachable again" in line for line in said)


@pytest.mark.slow
def test_an_outage_past_the_limit_ends_the_worker_in_one_line_and_the_heartbeat_requeues_its_trial(tmp_path, postgres):

    url = postgres.url(password="s3cret")
    enqueue_probes(url, "outage", 1, epochs=2)  # + seed000-v1 = the quota of 2
    flags = ["--trials", "2", "--baselines", "seed000-v1", "--heartbeat", "1", "--grace", "4"]
    worker = _worker(url, *flags, "--outage-limit", "5", cwd=tmp_path, env={"TUNER_WORKER_ID": "first"})

    def running():
        return next(((t.number,) for t in _trials(url) if t.state == TrialState.RUNNING), None)

    [abandoned] = wait_for(running, timeout=240, what="a trial running", give_up=ended(worker))
    stopped = time.monotonic()  # before the stop: the worker's outage can begin while pg_ctl still waits for it
    postgres.stop("immediate")
    out, err = worker.communicate(timeout=120)
    waited = time.monotonic() - stopped
    result = subprocess.CompletedProcess(worker.args, worker.returncode, out, err)
    assert_one_line_error(result, "postgresql+psycopg://postgres:***@127.0.0.1", "--outage-limit 5s", "re-queued")
    assert "s3cret" not in out + err
    assert 5 <= waited < 40, waited  # gave up after the limit, not before, and not much later
    print(f"the worker gave up {waited:.1f}s after the server stopped: {err.strip()}")

    postgres.start()
    assert {t.number: t.state for t in _trials(url)}[abandoned] == TrialState.RUNNING  # left for the heartbeat
    second = _worker(url, *flags, cwd=tmp_path, env={"TUNER_WORKER_ID": "second"})
    out, err = second.communicate(timeout=400)
    assert second.returncode == 0, out + err
    trials = {t.number: t for t in _trials(url)}
    assert trials[abandoned].state == TrialState.FAIL
    [retry] = [t for t in trials.values() if t.system_attrs.get("failed_trial") == abandoned]
    assert retry.state in FINISHED and retry.user_attrs["worker"] == "second"
    assert sum(t.state in FINISHED for t in trials.values()) == 2
    assert not [t for t in trials.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.slow
def test_a_one_process_run_rides_out_a_database_restart(tmp_path, postgres):
    url = postgres.url()
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner",
            "digits",
            "--storage",
            url,
            "--trials",
            "3",
            "--baselines",
            "seed000-v1",
            "--pruner",
            "none",
            *LONGER_TRIALS,
        ],
        cwd=tmp_path,
        env=tuner_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def training():
        assert run.poll() is None, run.communicate()
        return any(t.state == TrialState.RUNNING and t.intermediate_values for t in _trials_named(url, "digits"))

    wait_for(training, timeout=300, interval=0.5, what="a trial reporting")
    postgres.stop("immediate")
    time.sleep(8)
    postgres.start()
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, out + err
    assert "reachable again after" in out and "Traceback" not in err
    trials = _trials_named(url, "digits")
    assert sum(t.state in FINISHED for t in trials) == 3, [(t.number, t.state.name) for t in trials]  # (a sampled
    # model too large for 8x8 images is pruned as "rejected", even with --pruner none)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL)]


def _trials_named(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
