"""A journal file's dead workers are found by their heartbeats, wherever they ran, not only by a pid on this host.

Real workers' handles (SharedStudy) on a real journal file, with a short
heartbeat and grace period; the slow test kills a real `tuner worker`
process that names itself after another host.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
from conftest import tuner_env
from optuna.trial import TrialState
from polling import ended, wait_for

from tuner.distributed.shared_study import SharedStudy
from tuner.storage.journal_heartbeats import heartbeat_dir
from tuner.storage.optuna_compat import trial_id_of

optuna.logging.set_verbosity(optuna.logging.ERROR)
GRACE = 3


def _worker(url: str, said: list) -> SharedStudy:
    shared = SharedStudy(url, "digits", heartbeat=1, grace=GRACE, say=said.append)
    shared.join(lambda storage: optuna.create_study(study_name="digits", storage=storage, load_if_exists=True))
    return shared


def _claim(shared: SharedStudy, worker: str, rate: float) -> optuna.Trial:
    """A trial claimed as `shared` claims one, then signed by `worker` (another host, or a pid that lives on)."""
    trial = shared.locked(shared._ask)
    trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    trial.set_user_attr("probe", rate)
    trial.set_user_attr("worker", worker)
    return trial


@pytest.mark.slow
def test_a_stopped_heartbeat_is_reaped_after_the_grace_period_wherever_its_worker_ran(tmp_path):
    url = f"journal:///{tmp_path / 'study.log'}"
    said: list[str] = []
    reaper, other, live_worker = _worker(url, said), _worker(url, said), _worker(url, said)
    away = _claim(other, "gpu-node-7:4242", 1)  # another host: its pid means nothing here
    reused = _claim(other, f"{socket.gethostname()}:1", 2)  # this host, but pid 1 lives on, unrelated
    live = _claim(live_worker, "gpu-node-8:4242", 3)
    assert (heartbeat_dir(tmp_path / "study.log") / str(trial_id_of(away))).is_file()
    with live_worker.beating(live):  # its thread beats every second (and reaps too)
        reaper.reap()
        states = {t.number: t.state for t in reaper.study.get_trials(deepcopy=False)}
        assert set(states.values()) == {TrialState.RUNNING}  # within the grace period: nobody is dead yet
        time.sleep(GRACE + 2)
        reaper.reap()
        trials = {t.number: t for t in reaper.study.get_trials(deepcopy=False)}
    assert trials[away.number].state == TrialState.FAIL and trials[reused.number].state == TrialState.FAIL
    assert trials[live.number].state == TrialState.RUNNING
    retries = {t.system_attrs["failed_trial"]: t for t in trials.values() if "failed_trial" in t.system_attrs}
    assert set(retries) == {away.number, reused.number}
    for number, retry in retries.items():  # re-queued with the same parameters
        assert retry.state == TrialState.WAITING and retry.params == trials[number].params
    assert any("gpu-node-7:4242" in line and "no live worker" in line for line in said), said
    live_worker.tell(live, 0.9, TrialState.COMPLETE)
    reaper.reap()  # a finished trial's heartbeat file goes
    assert sorted(p.name for p in heartbeat_dir(tmp_path / "study.log").iterdir()) == [".now"]


def test_a_dead_process_on_this_host_is_reaped_at_once(tmp_path):
    url = f"journal:///{tmp_path / 'study.log'}"
    said: list[str] = []
    reaper = _worker(url, said)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    trial = _claim(reaper, f"{socket.gethostname()}:{gone.stdout.strip()}", 1)
    reaper.reap()  # no grace period to wait: the process is gone
    assert reaper.study.trials[trial.number].state == TrialState.FAIL


@pytest.mark.slow
def test_a_killed_worker_named_after_another_host_is_reaped_by_its_heartbeat(tmp_path):
    journal = tmp_path / "study.log"
    url = f"journal:///{journal}"
    # 6 epochs: the victim's trial lasts seconds, many polls long
    flags = ["--trials", "3", "--folds", "2", "--epochs", "6", "--subset", "300", "--baselines", "seed000-v1",
             "--heartbeat", "1", "--grace", "5", "--no-progress"]  # fmt: skip

    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tuner", "worker", "digits", "--storage", url, *flags],
            cwd=tmp_path, env=tuner_env({"TUNER_WORKER_ID": name}), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    victim = start("elsewhere:1")  # pid 1 is alive here: only the heartbeat can tell it is dead

    def victims_trial():  # the trial itself, not its number: trial 0 would read as "not yet"
        study = optuna.load_study(study_name="digits", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))))  # fmt: skip
        running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        return next((t for t in running if t.user_attrs.get("worker") == "elsewhere:1"), None)

    killed = wait_for(victims_trial, timeout=300, what="the victim running a trial", give_up=ended(victim)).number
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    survivor = start("survivor")
    output, _ = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, output
    assert f"trial {killed} (elsewhere:1) has no live worker" in output
    study = optuna.load_study(study_name="digits", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))  # fmt: skip
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[killed].state == TrialState.FAIL
    assert [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert len([t for t in trials.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3
    assert not [t for t in trials.values() if t.state == TrialState.RUNNING]
