"""A PostgreSQL server of our own: a temporary folder, a free port on 127.0.0.1, stopped, crashed, frozen at will.

The outage tests and the proxy load benchmark stop their database mid-study
or fill its connection table; they must never do that to the machine's own
server, which other work uses. `initdb` and `pg_ctl` come from
/usr/local/bin, /usr/lib/postgresql/*/bin or the PATH; PostgreSQL refuses to
run as root, so as root they run as the `postgres` user (runuser), on a
folder handed to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_program(name: str) -> str | None:
    """The PostgreSQL program `name` (initdb, pg_ctl), or None when PostgreSQL's server is not installed."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    for candidate in [f"/usr/local/bin/{name}", *reversed(found), shutil.which(name)]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def available() -> bool:
    """Whether a throwaway server can be made here."""
    return bool(find_program("initdb") and find_program("pg_ctl"))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


class ThrowawayPostgres:
    """`with ThrowawayPostgres() as pg:` a running server at `pg.url()`; `pg.stop()`, `pg.start()` at will."""

    def __init__(self, max_connections: int = 100):
        self.max_connections = max_connections
        self.folder = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
        self.data, self.log = self.folder / "data", self.folder / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self._frozen: list[int] = []
        if self.as_root:
            shutil.chown(self.folder, "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}{log[-2000:]}")

    def url(self, password: str | None = None, database: str = "postgres") -> str:
        """The server's SQLAlchemy URL (trust authentication: any password is accepted, and must be masked)."""
        user = f"postgres:{password}" if password else "postgres"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """A new, empty cluster (trust authentication for user postgres)."""
        initdb = find_program("initdb")
        assert initdb, "PostgreSQL's initdb is not installed"
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={self.max_connections}"
        )
        self._run(
            str(find_program("pg_ctl")), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` is a crash (no goodbye to clients), `fast` a clean shutdown."""
        self._run(str(find_program("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop")

    def _pids(self) -> list[int]:
        """The server's processes: the postmaster and its children (one backend per connection)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def kill(self) -> None:
        """A crash: SIGKILL to every server process; `start()` recovers the data folder."""
        pids = self._pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._frozen = []
        # the dead postmaster may stay a zombie here (nobody reaps it), which PostgreSQL takes for a live one
        for lock in [self.data / "postmaster.pid", *self.folder.glob(".s.PGSQL.*.lock")]:
            lock.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP to every server process: connections stay open and nothing answers, as on a paused machine."""
        self._frozen = self._pids()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen server goes on where it stopped."""
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def version(self) -> str:
        """The server's version, e.g. "15.20"."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url(), poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            return str(connection.execute(sqlalchemy.text("SHOW server_version")).scalar()).split()[0]

    def running(self) -> bool:
        """Whether the server's process is up."""
        return (self.data / "postmaster.pid").exists()

    def __enter__(self) -> ThrowawayPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thaw()
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
