"""`tuner STUDY --workers N`: N worker processes on this machine, one study, one budget.

Processes, not threads: each trains with its own Python and its own Keras.
They share the study through a journal file (no server needed, and no
"database is locked", which SQLite gives several writing processes) or
through the server database named by --storage. Each child gets the user's
study flags (written back from the same settings the parser read, so none is
forgotten), the storage URL in $TUNER_STORAGE (never on its command line,
which every local user can read) and its device and thread share from
tuner.distributed.worker_devices.
Ctrl-C or SIGTERM reaches every child; each ends its trial cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.core.errors import TunerError
from tuner.core.settings import WORKER, StudyConfig, as_flags
from tuner.distributed import worker_devices as devices
from tuner.storage.urls import STORAGE_ENV, mask_url

DEFAULT_JOURNAL = "tuner-journal.log"


@dataclass
class LocalRun:
    """How the workers ended."""

    storage_url: str
    interrupted: bool
    exit_code: int  # 0 when every worker met the budget; else the first failure's status


def storage_for_workers(url: str | None) -> str:
    """A storage several processes can write at once (a journal file in this folder by default)."""
    if url is None:
        return f"journal:///{Path.cwd() / DEFAULT_JOURNAL}".replace("////", "///")
    if url.startswith("sqlite"):
        raise TunerError(
            f"SQLite ({mask_url(url)}) cannot take several writing processes; "
            f"use --storage journal:///FILE.log or a PostgreSQL/MySQL URL with --workers"
        )
    return url


def worker_command(study: str, given: dict[str, Any], study_name: str, verbose: bool) -> list[str]:
    """`python -m tuner worker STUDY --study-name NAME` and every study flag the user gave.

    No --storage: the URL goes in the environment (worker_env), since any
    local user can read a command line (ps, /proc/PID/cmdline) and only the
    process' owner its environment.
    """
    command = [
        sys.executable,
        "-m",
        "tuner",
        "worker",
        study,
        "--study-name",
        study_name,
        "--no-progress",
        *as_flags(given, WORKER),
    ]
    return command + (["--verbose"] if verbose else [])


def worker_env(url: str, index: int, workers: int) -> dict[str, str]:
    """Worker `index`'s environment: this one, the storage URL in $TUNER_STORAGE, its device and thread share."""
    return {**os.environ, STORAGE_ENV: url, **devices.worker_env(index, workers)}


def run_local_workers(
    study: str,
    given: dict[str, Any],
    config: StudyConfig,
    workers: int,
    storage_url: str | None,
    study_name: str | None,
    verbose: bool = False,
) -> LocalRun:
    """Start `workers` worker processes on study `study` with the user's flags `given`; wait for all of them."""
    if workers < 1:
        raise TunerError(f"--workers must be a whole number >= 1, got {workers}")
    url = storage_for_workers(storage_url)
    command = worker_command(study, given, study_name or config.name, verbose)
    print(f"{devices.describe(workers)}; study {study_name or config.name!r} in {mask_url(url)}", flush=True)
    children = [subprocess.Popen(command, env=worker_env(url, index, workers)) for index in range(workers)]

    def stop_children(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop_children)
    interrupted = False
    codes: list[int] = []
    try:
        for child in children:
            while True:
                try:
                    codes.append(child.wait())
                    break
                except KeyboardInterrupt:  # Ctrl-C reached the children too; wait for them to finish cleanly
                    interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    interrupted = interrupted or 130 in codes
    failed = [code for code in codes if code != 0]  # a killed worker (negative code) is a failure too
    return LocalRun(url, interrupted, (failed[0] if failed[0] > 0 else 1) if failed else 0)
