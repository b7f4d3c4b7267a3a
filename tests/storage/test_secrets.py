"""A database password never leaves the process that uses it: a real `--workers 2` study on the real MariaDB.

The password holds every character a URL gives a meaning to (`/#?:@`),
unencoded, between two random words; the test looks for those words in
everything the run leaves behind: what it prints, every file it writes,
every process' command line while it runs, and the study database itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from conftest import run_tuner

pymysql = pytest.importorskip("pymysql")

pytestmark = pytest.mark.slow  # trains two small trials and exports one
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def _root():
    return pymysql.connect(**MARIADB, connect_timeout=3, autocommit=True)


@pytest.fixture
def mariadb_account():
    """A throwaway database and a user whose password is `WORD/#?:@WORD`; both dropped afterwards."""
    try:
        root = _root()
    except Exception as error:
        pytest.skip(f"MariaDB not reachable on 127.0.0.1:3306 as root: {error}")
    words = (uuid.uuid4().hex[:12], uuid.uuid4().hex[:12])
    password = f"{words[0]}/#?:@{words[1]}"
    name = f"tuner_secret_{uuid.uuid4().hex[:8]}"
    hosts = ("127.0.0.1", "localhost")
    with root.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
        for host in hosts:
            cursor.execute(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON {name}.* TO '{name}'@'{host}'")
    try:
        yield {"database": name, "user": name, "password": password, "words": words}
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            for host in hosts:
                cursor.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")
        root.close()


class CommandLines:
    """Every process' command line (/proc/*/cmdline, readable by any local user), sampled until stopped."""

    def __init__(self, interval: float = 0.2):
        self.seen: dict[int, str] = {}
        self.folders: dict[int, str] = {}  # each process's working folder, to tell this test's own from others'
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    except OSError:
                        continue  # ended meanwhile
                    if line:
                        self.seen[int(entry.name)] = self.seen.get(int(entry.name), "") + "\n" + line
                        try:
                            self.folders[int(entry.name)] = os.readlink(entry / "cwd")
                        except OSError:
                            pass
            self.samples += 1
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _database_dump(database: str) -> str:
    """The study database's every table with its rows: mysqldump's if installed, else SELECT * of each."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if dump:
        made = subprocess.run(
            [dump, "-h127.0.0.1", "-P3306", "-uroot", "--skip-extended-insert", database],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        return made.stdout
    root = _root()
    try:
        with root.cursor() as cursor:
            cursor.execute(f"SHOW TABLES FROM {database}")
            tables = [row[0] for row in cursor.fetchall()]
            rows = []
            for table in tables:
                cursor.execute(f"SELECT * FROM {database}.`{table}`")
                rows += [f"{table}: {row!r}" for row in cursor.fetchall()]
        return "\n".join(rows)
    finally:
        root.close()


def _files_holding(folder: Path, words: tuple[str, ...]) -> list[str]:
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and any(word.encode() in path.read_bytes() for word in words)
    ]


def test_a_password_with_every_url_character_never_shows_during_a_two_worker_study(tmp_path, mariadb_account):
    account, words = mariadb_account, mariadb_account["words"]
    url = f"mysql+pymysql://{account['user']}:{account['password']}@127.0.0.1:3306/{account['database']}"
    command_lines = CommandLines()
    try:
        result = run_tuner(
            "digits",
            "--workers",
            "2",
            "--trials",
            "2",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--subset",
            "300",
            "--baselines",
            "seed000-v1,seed000-v2",
            "--export-top",
            "1",
            "--no-progress",
            cwd=tmp_path,
            env={"TUNER_STORAGE": url},  # as a person keeps it off their own command line
            timeout=500,
        )
    finally:
        command_lines.stop()
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    # the study ran on that database with that password: both trials, and the export of the best
    assert f"in mysql+pymysql://{account['user']}:***@127.0.0.1:3306/{account['database']}" in printed
    assert "# Study digits" in printed and "Exported to exports/digits" in printed
    assert list((tmp_path / "exports" / "digits").glob("*.card.md")) and list((tmp_path / "tuner-artifacts").rglob("*"))
    ours = str(tmp_path)  # another test session on the machine may run workers of its own meanwhile
    workers = [
        pid
        for pid, lines in command_lines.seen.items()
        if " -m tuner worker digits" in lines and command_lines.folders.get(pid) == ours
    ]
    # both workers were seen (a forked child shows its parent's command line until it execs: more pids may be)
    assert len(workers) >= 2 and command_lines.samples >= 10, (command_lines.samples, workers)

    assert not [word for word in words if word in printed], printed
    assert not _files_holding(tmp_path, words)
    assert not [lines for lines in command_lines.seen.values() if any(word in lines for word in words)]
    dump = _database_dump(account["database"])
    assert "trial_user_attributes" in dump and "seed000-v1" in dump  # the dump holds the study's rows
    assert not [word for word in words if word in dump]
