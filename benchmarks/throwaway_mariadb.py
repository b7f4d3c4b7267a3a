"""A MariaDB server of our own: a temporary folder, a free port on 127.0.0.1, crashed, frozen and started at will.

The stall tests crash (SIGKILL) and freeze (SIGSTOP) their database
mid-study; they must never do that to the machine's own server. The server
runs as root (`--user=root`) with `--skip-grant-tables`, so any user and
password are accepted (and must be masked), on a data folder made by
`mariadb-install-db`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.throwaway_postgres import free_port


def available() -> bool:
    """Whether a throwaway server can be made here."""
    return bool(shutil.which("mariadbd") or os.access("/usr/sbin/mariadbd", os.X_OK)) and bool(
        shutil.which("mariadb-install-db")
    )


class ThrowawayMariaDB:
    """`with ThrowawayMariaDB() as db:` a running server at `db.url()`; `kill()`, `freeze()`, `thaw()`, `start()`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tuner-mariadb-"))
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, password: str | None = None, database: str = "tuner") -> str:
        """The server's SQLAlchemy URL (any password is accepted, and must be masked)."""
        user = f"root:{password}" if password else "root"
        return f"mysql+pymysql://{user}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """A new, empty data folder."""
        done = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root", "--skip-test-db"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        """Start the server and wait until it answers; the database `tuner` exists afterwards."""
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.process = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                f"--socket={self.folder / 'sock'}",
                f"--pid-file={self.folder / 'pid'}",
                f"--log-error={self.log}",
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--max-connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self._execute("CREATE DATABASE IF NOT EXISTS tuner")
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text() if self.log.exists() else ""
                    raise RuntimeError(f"mariadbd did not start: {log[-2000:]}") from None
                time.sleep(0.2)

    def _execute(self, sql: str) -> None:
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2)
        try:
            connection.cursor().execute(sql)
        finally:
            connection.close()

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to clients."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections and answers nothing, as a paused machine."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen server goes on where it stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> ThrowawayMariaDB:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
                self.process.wait()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
