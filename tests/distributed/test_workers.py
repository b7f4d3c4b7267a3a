"""Distributed workers on the real PostgreSQL, and local workers on a journal file.

Each test makes its own study (a unique name) and deletes it afterwards.
Workers racing on a fresh PostgreSQL or MariaDB database:
tests/storage/test_fresh_databases.py.
Trials are tiny (digits, 2 folds, 1-2 epochs, a subset) so several worker
processes fit on a 2-core machine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import optuna
import pytest
from conftest import MACHINE_POSTGRES, assert_one_line_error, require_database, run_tuner, tuner_env
from optuna.trial import TrialState
from polling import ended, wait_for
from worker_studies import BASELINES, FINISHED, assert_quota_met_once_each, enqueue_probes

from tuner.distributed import worker_devices as devices

TINY = ["--folds", "2", "--epochs", "1", "--subset", "300", "--no-progress"]


@pytest.fixture
def study_name():
    """A fresh study name; the study is deleted from PostgreSQL after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        optuna.delete_study(study_name=name, storage=MACHINE_POSTGRES)
    except Exception:
        pass  # not there, or the server is not reachable


def _start_worker(url: str, name: str, *extra: str, env: dict | None = None, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", "worker", "digits", "--storage", url, "--study-name", name, *TINY, *extra],
        cwd=cwd,
        env=tuner_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def _trials(url: str | optuna.storages.BaseStorage, name: str):
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.mark.slow
def test_killed_worker_trial_fails_and_is_retried(tmp_path, study_name):
    url = MACHINE_POSTGRES
    require_database(url)
    # 6 epochs: the victim's trial lasts seconds, many polls long
    enqueue_probes(url, study_name, 3, epochs=6)
    beats = ["--heartbeat", "1", "--grace", "5", "--trials", "4", "--baselines", "seed000-v1", "--epochs", "6"]
    # the victim names itself, so only heartbeats (not a process check) can find its dead trial
    victim = _start_worker(
        url, study_name, *beats, env={**devices.worker_env(0, 2), "TUNER_WORKER_ID": "victim"}, cwd=tmp_path
    )
    survivor = _start_worker(url, study_name, *beats, env=devices.worker_env(1, 2), cwd=tmp_path)
    storage = optuna.storages.RDBStorage(url)  # one connection pool for all the polls: each poll stays short

    def victims_trial():  # the trial itself, not its number: trial 0 would read as "not yet"
        running = [t for t in _trials(storage, study_name) if t.state == TrialState.RUNNING]
        return next((t for t in running if t.user_attrs.get("worker") == "victim"), None)

    killed = wait_for(victims_trial, timeout=240, what="the victim running a trial", give_up=ended(victim)).number
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    output = _finish(survivor)

    trials = {t.number: t for t in _trials(url, study_name)}
    dead = trials[killed]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1, output
    retry = retries[0]
    # the same parameters once more (the dead one may have died before suggesting them all)
    assert dead.params.items() <= retry.params.items()
    assert retry.system_attrs.get("fixed_params") == dead.system_attrs.get("fixed_params")
    assert retry.state in FINISHED and retry.user_attrs["worker"] != "victim"
    finished = [t for t in trials.values() if t.state in FINISHED]
    assert len(finished) == 4  # the failed trial did not consume the quota
    assert not [t for t in trials.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.slow
def test_local_workers_on_a_journal_file(tmp_path):
    journal = tmp_path / "tuner-journal.log"  # where `--workers` puts the study when no --storage is given
    enqueue_probes(f"journal:///{journal}", "digits", 3)  # + 3 baselines = the quota
    result = run_tuner(
        "digits", "--workers", "3", "--trials", "6", "--baselines", BASELINES, *TINY, cwd=tmp_path, timeout=400
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "locked" not in output.lower() and "Traceback" not in output
    assert journal.exists() and not (tmp_path / "tuner.db").exists()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="digits", storage=storage).get_trials(deepcopy=False)
    assert_quota_met_once_each(trials, 6)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2
    assert max(t.value for t in trials if t.state == TrialState.COMPLETE) > 0.2  # learned: chance is 0.1
    assert "3 workers on the CPU" in output and "# Study digits" in output


@pytest.mark.slow
def test_bad_storage_urls_give_one_masked_line(tmp_path):
    cases = [
        ("postgresql://who:p%40ss@127.0.0.1:1/none", "cannot open storage postgresql://who:***@127.0.0.1:1/none"),
        ("mysql://nobody:s3cret@127.0.0.1:3306/test?password=s3cret", "cannot open storage mysql://nobody:***@"),
        ("sqlite:///x.db", None),  # with --workers: SQLite cannot take several writers
    ]
    for url, fragment in cases[:2]:
        result = run_tuner("worker", "digits", "--storage", url, "--trials", "2", cwd=tmp_path, timeout=120)
        assert_one_line_error(result, fragment)
        assert "p%40ss" not in result.stderr and "p@ss" not in result.stderr and "s3cret" not in result.stderr
    result = run_tuner("digits", "--workers", "2", "--storage", "sqlite:///x.db", cwd=tmp_path, timeout=120)
    assert_one_line_error(result, "SQLite", "journal:///")


@pytest.mark.slow
def test_joining_with_another_quota_is_refused_also_where_an_older_version_stored_it_as_budget(tmp_path):
    url = f"journal:///{tmp_path / 'study.log'}"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log")))
    optuna.create_study(study_name="digits", storage=storage, direction="maximize").set_user_attr("budget", 5)
    result = run_tuner("worker", "digits", "--storage", url, "--trials", "7", *TINY, cwd=tmp_path, timeout=120)
    assert_one_line_error(result, "has a quota of 5 trials", "--trials 5")
    assert optuna.load_study(study_name="digits", storage=storage).trials == []  # untouched


def test_workers_sample_different_trials():
    """Every worker seeds its sampler differently: the same seed would make all suggest the same models."""
    import search_spaces
    from tuner.core.study_file import load_study_config
    from tuner.distributed.shared_study import sampler_seed_offset as seed_offset
    from tuner.search.samplers import make_sampler

    config = load_study_config("digits", {"sampler": "random"})
    space = search_spaces.get_space("cnn")
    suggested = []
    for worker in ("host-a:101", "host-a:102", "host-b:101"):
        study = optuna.create_study(sampler=make_sampler(config, seed_offset(worker)), direction="maximize")
        trial = study.ask()
        space.suggest(trial, (8, 8, 1), 10, 1)
        suggested.append(trial.params)
    assert suggested[0] != suggested[1] != suggested[2] != suggested[0]


@pytest.mark.slow
def test_local_workers_keep_every_study_flag(tmp_path):
    """--workers used to drop --objectives and --max-gap: the workers must run the study the user asked for."""
    journal = tmp_path / "tuner-journal.log"
    result = run_tuner(
        "digits",
        "--workers",
        "2",
        "--trials",
        "2",
        "--objectives",
        "accuracy,time",
        "--max-gap",
        "0.1",
        "--baselines",
        "seed000-v1,seed000-v2",
        "--export-top",
        "1",
        *TINY,
        cwd=tmp_path,
        timeout=400,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="digits", storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["cv_val_accuracy", "seconds_per_fold"]
    assert study.user_attrs["config"]["max_gap"] == 0.1
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete and all(set(t.constraints or {}) == {"overfit_gap"} for t in complete)
    assert all(t.user_attrs["n_folds"] == 2 for t in complete)
    # after 1 epoch the training loss (an epoch's mean) is above the validation loss: the gap is under 0.1
    assert any(t.user_attrs["feasible"] for t in complete)
    assert "Exported to exports/digits" in output  # --export-top reached the parent, after the workers


def test_local_workers_get_the_storage_url_in_their_environment_never_on_their_command_line():
    """Any local user reads a command line (/proc/PID/cmdline); only the owner reads the environment."""
    from tuner.distributed.local_workers import worker_command, worker_env

    url = "mysql+pymysql://u:pa/ss#1@127.0.0.1:3306/t"
    command = worker_command("digits", {"trials": 4}, "digits", verbose=False)
    assert "--storage" not in command and not [part for part in command if "pa/ss" in part]
    assert command[-2:] == ["--trials", "4"]
    assert worker_env(url, 0, 2)["TUNER_STORAGE"] == url
