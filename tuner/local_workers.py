"""`tuner STUDY --workers N`: N worker processes on this machine, one study, one budget.

Processes, not threads: each trains with its own Python and its own Keras.
They share the study through a journal file (no server needed, and no
"database is locked", which SQLite gives several writing processes) or
through the server database named by --storage. Each child gets its device
and thread share from tuner.devices. Ctrl-C or SIGTERM reaches every child,
each ends its trial cleanly; then the summary is printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from tuner import devices
from tuner.config import StudyConfig
from tuner.errors import TunerError
from tuner.storage import mask_url

DEFAULT_JOURNAL = "tuner-journal.log"
FORWARDED = ("folds", "repeats", "epochs", "subset", "seed", "data_dir", "sampler", "pruner", "early_stopping",
             "timeout", "baselines", "trials")


def storage_for_workers(url: str | None) -> str:
    """A storage several processes can write at once."""
    if url is None:
        return f"journal:///{Path.cwd() / DEFAULT_JOURNAL}".replace("////", "///")
    if url.startswith("sqlite"):
        raise TunerError(
            f"SQLite ({mask_url(url)}) cannot take several writing processes; "
            f"use --storage journal:///FILE.log or a PostgreSQL/MySQL URL with --workers"
        )
    return url


def worker_command(config: StudyConfig, args: argparse.Namespace, url: str) -> list[str]:
    """`python -m tuner worker ...` with the user's flags (the study's budget only if given)."""
    command = [sys.executable, "-m", "tuner", "worker", args.study, "--storage", url,
               "--study-name", args.study_name or config.name, "--no-progress"]
    for key in FORWARDED:
        value = getattr(args, key, None)
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    if args.verbose:
        command.append("--verbose")
    return command


def run_local_workers(config: StudyConfig, args: argparse.Namespace) -> int:
    """Start the workers, wait for all, print the study's summary; 130 if interrupted."""
    from tuner.runner import open_study
    from tuner.summary import render

    workers = args.workers
    if workers < 1:
        raise TunerError(f"--workers must be a whole number >= 1, got {workers}")
    url = storage_for_workers(args.storage)
    command = worker_command(config, args, url)
    print(f"{devices.describe(workers)}; study {args.study_name or config.name!r} in {mask_url(url)}", flush=True)
    children = [
        subprocess.Popen(command, env={**os.environ, **devices.worker_env(index, workers)})
        for index in range(workers)
    ]

    def stop_children(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop_children)
    interrupted = False
    try:
        codes = []
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
    study = open_study(config, url, args.study_name, create=False)
    print(render(study))
    if interrupted:
        print("\nInterrupted: the trials in flight were marked FAIL and re-queued; run the same command to continue.")
        return 130
    failed = [code for code in codes if code != 0]  # a killed worker (negative code) is a failure too
    return (failed[0] if failed[0] > 0 else 1) if failed else 0
