"""`tuner dashboard`: optuna-dashboard on a study's storage, artifacts included.

The dashboard opens the storage the way workers do (tuner.storage) and the
artifact store beside it, so exported model cards and plots show on their
trials. It only reads, apart from a study note it adds when the study has
none, so it can run while workers write to the same SQLite or PostgreSQL
storage. It binds to 127.0.0.1, and a guard in front of optuna-dashboard
(Guard) keeps other web pages out: optuna-dashboard can tell trials, edit
notes and delete studies, and has no authentication, so

- every request other than GET and HEAD is refused unless --allow-writes;
- a request whose Host is not a name of this dashboard is refused (a page
  whose DNS name was rebound to 127.0.0.1 sends its own name);
- a request whose Origin is another page's is refused.

docs/security.md says what is promised and how it is tested. Reach a
remote dashboard through an ssh tunnel rather than opening it to the network.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tuner.core.errors import TunerError
from tuner.dashboard.notes import write_study_note
from tuner.storage.storages import artifact_store, open_storage
from tuner.storage.urls import DEFAULT_STORAGE, artifact_dir, file_path, mask_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
READING_METHODS = ("GET", "HEAD")


def host_name(host: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lower case: `[::1]:8080` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def _ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """WSGI middleware before optuna-dashboard: only this machine's own pages reach it, and only to read.

    The port is not checked (an ssh tunnel serves it on another one): a
    rebound DNS name is caught by the name, and another page on this
    machine by its Origin, which names its port.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], bound: str, allow_writes: bool = False):
        self.app, self.allow_writes = app, allow_writes
        self.names = {*LOCAL_HOSTS, host_name(bound) if ":" not in bound else bound.lower()} - {""}  # no Host: refused
        self.any_ip = bound in WILDCARD_HOSTS  # bound to every address: reached by any of its IPs (no DNS to rebind)
        if bound not in LOCAL_HOSTS:
            self.names |= {socket.gethostname().lower(), socket.getfqdn().lower()}

    def refusal(self, environ: dict[str, Any]) -> str | None:
        """Why the request is refused (one line), or None to pass it on."""
        host = environ.get("HTTP_HOST", "")
        name = host_name(host).rstrip(".")
        if name not in self.names and not (self.any_ip and _ip_literal(name)):
            return (
                f"Host {host!r} is not an address of this dashboard (another site's page, through DNS rebinding?); "
                f"open it as http://127.0.0.1:PORT or http://localhost:PORT"
            )
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            return f"a request from another page ({origin}) is refused; open the dashboard itself at http://{host}"
        if environ.get("REQUEST_METHOD", "GET").upper() not in READING_METHODS:
            if not self.allow_writes:
                return (
                    "the dashboard is read-only: it refuses to tell trials, edit notes or attributes, or delete "
                    "studies and artifacts; restart it with --allow-writes to allow that from its own page"
                )
            if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
                return "a write from another site is refused; use the dashboard's own page"
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is None:
            return self.app(environ, start_response)
        body = f"403 Forbidden: {refusal}\n".encode()
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    """A browser fetches many things at once; one thread per request keeps the page quick."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no access log line per request
        pass


def _existing_file_storage(url: str) -> None:
    """A dashboard on a missing SQLite or journal file would create an empty one; say so instead."""
    path = file_path(url)
    if path is not None and not Path(path).is_file():
        raise TunerError(f"no storage file {path}; run a study first, or pass --storage URL of an existing one")


def study_id(storage: Any, name: str) -> int:
    """The dashboard's id of study `name` (its URL is /dashboard/studies/<id>)."""
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        names = [s.study_name for s in storage.get_all_studies()]
        choices = f"studies there: {', '.join(names)}" if names else "it has no studies yet; run one first"
        raise TunerError(f"no study named {name!r} in this storage; {choices}") from None


def study_url(base: str, storage: Any, name: str | None) -> str:
    """The page to open: the study's, or the list of studies."""
    return f"{base}/dashboard/studies/{study_id(storage, name)}" if name else f"{base}/dashboard"


def serve(
    study: str | None,
    storage_url: str | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_writes: bool = False,
) -> int:
    """Serve until Ctrl-C (or SIGTERM); prints the URL first. Read-only unless `allow_writes` (Guard)."""
    import optuna
    import optuna_dashboard

    url = storage_url or DEFAULT_STORAGE
    _existing_file_storage(url)
    storage = open_storage(url, heartbeat=False)  # the dashboard runs no trials
    if study is not None:
        study_id(storage, study)  # unknown study: fail before serving
    app = Guard(optuna_dashboard.wsgi(storage, artifact_store=artifact_store(url)), host, allow_writes)
    try:
        server = make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as error:
        raise TunerError(f"cannot listen on {host}:{port}: {error.strerror}; choose another --port") from None
    if study is not None:  # a study made before notes existed gets one now
        write_study_note(optuna.load_study(study_name=study, storage=storage))
    if host not in LOCAL_HOSTS:
        print(
            f"warning: the dashboard has no authentication; anyone who reaches {host}:{server.server_port} can read "
            f"every study{' and change or delete it (--allow-writes)' if allow_writes else ''}; "
            "prefer --host 127.0.0.1 and an ssh tunnel",
            file=sys.stderr,
            flush=True,
        )
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{server.server_port}"
    print(f"optuna-dashboard on {mask_url(url)} (artifacts: {artifact_dir(url)})")
    print(f"Open {study_url(base, storage, study)}", flush=True)
    if allow_writes:
        print("Writes allowed (--allow-writes): its own page can tell trials, edit notes and delete studies.", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    _stop_on_signals()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C and `kill` stop it, even when started in the background (where SIGINT is ignored)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)
