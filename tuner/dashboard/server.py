"""`tuner dashboard`: optuna-dashboard on a study's storage, artifacts included.

The dashboard opens the storage the way workers do (tuner.storage) and the
artifact store beside it, so exported model cards and plots show on their
trials. It only reads, apart from a study note it adds when the study has
none, so it can run while workers write to the same SQLite or PostgreSQL
storage. It binds to 127.0.0.1: the dashboard can delete studies, so reach
a remote one through an ssh tunnel rather than opening it to the network.
"""

from __future__ import annotations

import sys
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


def serve(study: str | None, storage_url: str | None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Serve until Ctrl-C (or SIGTERM); prints the URL first."""
    import optuna
    import optuna_dashboard

    url = storage_url or DEFAULT_STORAGE
    _existing_file_storage(url)
    storage = open_storage(url, heartbeat=False)  # the dashboard runs no trials
    if study is not None:
        study_id(storage, study)  # unknown study: fail before serving
    app = optuna_dashboard.wsgi(storage, artifact_store=artifact_store(url))
    try:
        server = make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as error:
        raise TunerError(f"cannot listen on {host}:{port}: {error.strerror}; choose another --port") from None
    if study is not None:  # a study made before notes existed gets one now
        write_study_note(optuna.load_study(study_name=study, storage=storage))
    if host not in LOCAL_HOSTS:
        print(
            f"warning: the dashboard has no authentication and can delete studies; anyone who reaches {host}:"
            f"{server.server_port} can; prefer --host 127.0.0.1 and an ssh tunnel",
            file=sys.stderr,
            flush=True,
        )
    shown_host = f"[{host}]" if ":" in host else host
    base = f"http://{shown_host}:{server.server_port}"
    print(f"optuna-dashboard on {mask_url(url)} (artifacts: {artifact_dir(url)})")
    print(f"Open {study_url(base, storage, study)}", flush=True)
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
