"""The command line: `tuner STUDY [flags]` runs a study; subcommands do the rest.

Study flags come from the settings' one definition (tuner.core.settings).
Everything heavy (Keras, Optuna, the dashboard) is imported inside the
command that needs it, so `tuner --help` answers at once. Bad input never
shows a traceback: TunerError and argparse errors print one line and exit
with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner.core import quiet_tensorflow
from tuner.core.clock import process_start_time
from tuner.core.errors import TunerError
from tuner.core.settings import EXPORT, RUN, WORKER, Kind, StudyName, flag_settings

COMMANDS = ("run", "report", "export", "predict", "dashboard", "pretrain", "worker", "storage-proxy", "repair-journal")
STORAGE_HELP = "Optuna storage URL (default: $TUNER_STORAGE if set, else sqlite:///tuner.db in this folder)"
TRAINING_COMMANDS = ("run", "worker", "export", "predict", "pretrain")  # those that load Keras and may use a GPU


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line instead of usage + error
        self.exit(2, f"tuner: error: {message} (see 'tuner --help')\n")


def _argparse_type(kind: Kind) -> Callable[[str], Any]:
    """The kind's parser, with its TunerError turned into argparse's one-line error."""

    def parse(text: str) -> Any:
        try:
            return kind.parse(text)
        except TunerError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = type(kind).__name__.lower()
    return parse


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """A flag for every study setting that `command` takes (default None: "not given")."""
    for name, spec in flag_settings(command):
        flag = f"--{name.replace('_', '-')}"
        if spec.kind.bare:
            parser.add_argument(flag, *spec.aliases, dest=name, action="store_const", const=True, help=spec.help)
            continue
        parser.add_argument(
            flag,
            *spec.aliases,
            dest=name,
            type=_argparse_type(spec.kind),
            metavar=spec.kind.metavar,
            help=spec.help,
        )


def _given(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The study settings given on the command line (None = not given: the study file's value stays)."""
    return {name: getattr(args, name) for name, _ in flag_settings(command)}


def _study_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="a study name from studies/ (fashion, mnist, digits), a .toml file, or folder:PATH")
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument(
        "--study-name",
        type=_argparse_type(StudyName()),
        help="name of the study in the storage (default: the study file's name)",
    )


def _run_flags(parser: argparse.ArgumentParser, command: str) -> None:
    _study_flags(parser)
    _setting_flags(parser, command)
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    from tuner.storage.storages import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY

    parser.add_argument(
        "--heartbeat",
        type=_whole_number,
        default=HEARTBEAT_INTERVAL,
        metavar="S",
        help=f"seconds between a running trial's heartbeats (default {HEARTBEAT_INTERVAL})",
    )
    parser.add_argument(
        "--grace",
        type=_whole_number,
        default=GRACE_PERIOD,
        metavar="S",
        help=f"seconds without a heartbeat before a trial is failed and re-queued (default {GRACE_PERIOD})",
    )
    parser.add_argument(
        "--max-retry",
        type=_whole_number,
        default=MAX_RETRY,
        metavar="N",
        help=f"how many times a dead worker's trial is re-queued (default {MAX_RETRY})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(prog="tuner", description="Tune Keras CNN image classifiers with Optuna.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    run = commands.add_parser("run", help="run a study (the default: 'tuner fashion' = 'tuner run fashion')")
    _run_flags(run, RUN)
    run.add_argument("--workers", type=_whole_number, help="run N worker processes on this machine, sharing --trials")
    worker = commands.add_parser(
        "worker", help="join a study and run its trials until its shared trial quota (or its time budget's search) is done"
    )
    _run_flags(worker, WORKER)
    _worker_flags(worker)
    report = commands.add_parser("report", help="print a study's summary without training")
    _study_flags(report)
    report.add_argument("--markdown", metavar="FILE", help="also write the summary to FILE as Markdown")
    export = commands.add_parser(
        "export", help="retrain the best trials, test them once, save .keras files, cards and plots"
    )
    _study_flags(export)
    _setting_flags(export, EXPORT)
    export.add_argument("--top", type=_whole_number, default=1, metavar="K", help="how many of the best trials (default 1)")
    export.add_argument("--out", help="folder for the models, cards and plots (default: exports/STUDY_NAME)")
    export.add_argument(
        "--ensemble",
        type=_whole_number,
        default=0,
        metavar="K",
        help="also average the K best models into one ensemble model with its own card (K >= 2)",
    )
    predict = commands.add_parser("predict", help="classify PNG/JPEG images or an .npz with an exported model")
    predict.add_argument("model", help="a .keras file written by 'tuner export'")
    predict.add_argument("images", nargs="+", help="PNG/JPEG files, or .npz files with an image array 'x'")
    dashboard = commands.add_parser(
        "dashboard",
        help="open optuna-dashboard on a study's storage, artifacts included",
        description="Serve optuna-dashboard on a study's storage, read-only: requests other than GET and HEAD "
        "(telling trials, editing notes, deleting studies or artifacts) are refused unless --allow-writes, and so are "
        "requests from other web pages (an Origin other than the dashboard's) and requests for another host name "
        "(DNS rebinding). See docs/security.md.",
    )
    dashboard.add_argument("study", nargs="?", help="name of the study in the storage (default: list them all)")
    dashboard.add_argument("--storage", help=STORAGE_HELP)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    dashboard.add_argument("--port", type=_whole_number, default=8080, help="port (default: 8080; 0 picks a free one)")
    dashboard.add_argument(
        "--allow-writes",
        action="store_true",
        help="let the dashboard's own page change studies (tell trials, edit notes, delete studies and artifacts)",
    )
    proxy = commands.add_parser(
        "storage-proxy", help="serve a database to many workers over few connections (workers: --storage grpc://HOST:PORT)"
    )
    proxy.add_argument("--storage", help="the PostgreSQL or MySQL URL of the workers' studies (default: $TUNER_STORAGE)")
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    proxy.add_argument("--port", type=_whole_number, default=13000, help="port (default: 13000; 0 picks a free one)")
    repair = commands.add_parser(
        "repair-journal", help="remove the records a crash or a full disk cut short from a journal file (keeps a copy)"
    )
    repair.add_argument("journal", help="the journal file (journal:///FILE.log or FILE.log)")
    pretrain = commands.add_parser("pretrain", help="train conv layers on one data set for studies to start from")
    pretrain.add_argument("source", help="mnist, fashion, digits, an .npz file, or folder:PATH")
    pretrain.add_argument("--out", required=True, help="folder to write conv_weights.npz and architecture.json to")
    pretrain.add_argument("--data-dir", help="where the source's files are (for mnist: mnist.npz or an .npz of x, y)")
    pretrain.add_argument("--epochs", type=_whole_number, default=5, help="training epochs (seed 002 used 15)")
    pretrain.add_argument("--subset", type=_whole_number, default=0, help="train on a stratified sample of N images")
    pretrain.add_argument("--seed", type=int, default=0, help="seed of the weights")
    return parser


def _print_export(finals: Any, storage_url: str | None) -> None:
    """What an export wrote: each model with its test accuracy, the ensemble, the plots not drawn."""
    from tuner.storage.urls import artifact_dir

    print(f"\nExported to {finals.out} (artifacts in {artifact_dir(storage_url)}):")
    for model in finals.models:
        print(
            f"  trial {model.trial_number}: {model.model_path} test accuracy {model.test_accuracy:.4f}, "
            f"{len(model.artifact_ids)} artifacts on the trial; trained {model.final_epochs} epochs ({model.epochs_rule})"
        )
        others = [path.name for name, path in model.formats.items() if name != "keras"]
        if others:
            print(f"    also, each checked against it on the test split: {', '.join(others)}")
    if finals.ensemble is not None:
        print(
            f"  ensemble of trials {', '.join(map(str, finals.ensemble.members))}: {finals.ensemble.model_path} "
            f"test accuracy {finals.ensemble.test_accuracy:.4f}"
        )
    for name, reason in finals.skipped_plots.items():
        print(f"  {name} not drawn: {reason}")


def _summary(study: Any) -> str:
    from tuner.results.summary import render
    from tuner.run.strategies import summary_section

    return render(study, summary_section(study))


def _cmd_run(args: argparse.Namespace) -> int:
    from tuner.core.study_file import load_study_config
    from tuner.run.pipeline import run_study

    given = _given(args, RUN)
    config = load_study_config(args.study, given)
    result = run_study(
        config,
        started=args.started,
        storage_url=args.storage,
        study_name=args.study_name,
        workers=args.workers,
        study_arg=args.study,
        given=given,
        verbose=2 if args.verbose else 0,
        progress=not args.no_progress,
    )
    return print_run(result)


def print_run(result: Any) -> int:
    """A run's summary, what it exported and its closing lines; returns the command's exit status."""
    print(_summary(result.study))
    if result.interrupted:
        print(
            "\nInterrupted: finished trials and finished models are kept, the trial in flight is marked FAIL and "
            "no half-trained model is written; run the same command to continue."
        )
        return 130
    if result.finals is not None:
        _print_export(result.finals, result.storage_url)
    for line in result.closing:
        print(f"\n{line}")
    return result.exit_code


def _cmd_worker(args: argparse.Namespace) -> int:
    from tuner.core.study_file import load_study_config
    from tuner.run.pipeline import work

    config = load_study_config(args.study, _given(args, WORKER))
    result = work(
        config,
        started=args.started,
        storage_url=args.storage,
        study_name=args.study_name,
        trials=args.trials,
        heartbeat=args.heartbeat,
        grace=args.grace,
        max_retry=args.max_retry,
        verbose=2 if args.verbose else 0,
    )
    return 130 if result.interrupted else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from tuner.core.files import write_text
    from tuner.core.study_file import load_study_config
    from tuner.search.study import open_study

    config = load_study_config(args.study)
    text = _summary(open_study(config, args.storage, args.study_name, create=False))
    print(text)
    if args.markdown:
        write_text(args.markdown, text + "\n")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tuner.core.study_file import load_study_config
    from tuner.results.export_study import export_study
    from tuner.results.formats import check_formats
    from tuner.search.strategy import Finals
    from tuner.search.study import open_study
    from tuner.storage.storages import artifact_store

    config = load_study_config(args.study, _given(args, EXPORT))
    check_formats(config.export_formats)  # before any training
    study = open_study(config, args.storage, args.study_name, create=False)
    out = Path(args.out or f"exports/{study.study_name}")
    exported = export_study(study, config, artifact_store(args.storage), args.top, out, args.ensemble)
    _print_export(Finals(exported.models, exported.ensemble, exported.skipped_plots, out), args.storage)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from tuner.results.predict import predict

    for label, name, probability in predict(args.model, args.images):
        print(f"{label}: {name} ({probability:.3f})")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from tuner.dashboard.server import serve

    return serve(args.study, args.storage, host=args.host, port=args.port, allow_writes=args.allow_writes)


def _cmd_storage_proxy(args: argparse.Namespace) -> int:
    from tuner.storage.proxy_server import serve_proxy

    if args.storage is None:
        raise TunerError("storage-proxy needs the database: --storage URL, or the URL in $TUNER_STORAGE")
    return serve_proxy(args.storage, host=args.host, port=args.port)


def _cmd_repair_journal(args: argparse.Namespace) -> int:
    from tuner.storage.journal_repair import repair_journal
    from tuner.storage.urls import journal_path

    print(repair_journal(journal_path(args.journal) or args.journal))
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from tuner.data import load_dataset
    from tuner.training.pretrain import pretrain

    if args.epochs < 1:
        raise TunerError(f"--epochs must be a whole number >= 1, got {args.epochs}")
    dataset = load_dataset(args.source, args.data_dir, args.subset, args.seed)
    architecture = pretrain(dataset, args.out, epochs=args.epochs, seed=args.seed)
    print(
        f"pretrained on {dataset.name} ({len(dataset.y_train)} images, {args.epochs} epochs): "
        f"train accuracy {architecture['train_accuracy']:.4f}, val accuracy {architecture['val_accuracy']:.4f}; "
        f'conv weights in {args.out} (use: pretrained = "{args.out}" in a study file)'
    )
    return 0


COMMAND_FUNCTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _cmd_run,
    "report": _cmd_report,
    "export": _cmd_export,
    "predict": _cmd_predict,
    "dashboard": _cmd_dashboard,
    "pretrain": _cmd_pretrain,
    "worker": _cmd_worker,
    "storage-proxy": _cmd_storage_proxy,
    "repair-journal": _cmd_repair_journal,
}


def _choose_backend() -> None:
    """Set KERAS_BACKEND for a visible GPU before anything imports Keras (tuner.distributed.worker_devices)."""
    from tuner.distributed import worker_devices as devices

    if os.environ.get("KERAS_BACKEND"):
        return  # the user's choice: no need to look for GPUs
    backend, reason = devices.choose_backend(os.environ, devices.visible_gpus(), devices.jax_support())
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    if reason:
        print(f"tuner: {reason}", file=sys.stderr, flush=True)


def _mask_passwords(argv: list[str]) -> None:
    """Wrap stdout and stderr so that no line shows a password of a URL on the command line or in $TUNER_STORAGE.

    Before argparse, so that even a usage error quoting the URL is masked.
    Every argument is read as a possible URL, in any form (one slash, an
    unencoded password: tuner.storage.urls.url_secrets).
    """
    from tuner.storage.urls import STORAGE_ENV, MaskedStream, url_secrets

    urls = [text.split("=", 1)[-1] if text.startswith("-") else text for text in argv]
    secrets = set().union(*map(url_secrets, [*urls, os.environ.get(STORAGE_ENV, "")]))
    if not secrets:
        return
    masked = {id(stream): MaskedStream(stream, secrets) for stream in (sys.stdout, sys.stderr)}
    sys.stdout, sys.stderr = masked[id(sys.stdout)], masked[id(sys.stderr)]
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for handler in (h for logger in loggers for h in getattr(logger, "handlers", [])):
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in masked:
            handler.setStream(masked[id(handler.stream)])  # a library's handler made before this call


def _storage_from_environment(args: argparse.Namespace) -> None:
    """No --storage: $TUNER_STORAGE's URL, if set (local workers get theirs so: no password on a command line)."""
    from tuner.storage.urls import STORAGE_ENV

    if getattr(args, "storage", "") is None and os.environ.get(STORAGE_ENV):
        args.storage = os.environ[STORAGE_ENV]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    started = process_start_time()  # a --budget counts from the command's start
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's buffers from malloc rather than TensorFlow's allocator: over 50 trials in one process resident memory
    # grew +147 MB instead of +334 MB, no slower on the studies timed (BENCHMARKS.md, "Memory over a long study")
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    quiet_tensorflow.install()  # oneDNN stays on (twice the training speed); its notice stays off stderr
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes: one new model per trial is the design
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        argv.insert(0, "run")  # `tuner fashion ...` means `tuner run fashion ...`
    parser = build_parser()
    _mask_passwords(argv)
    args = parser.parse_args(argv)
    args.started = started
    _storage_from_environment(args)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in TRAINING_COMMANDS:
        _choose_backend()
    try:
        return COMMAND_FUNCTIONS[args.command](args)
    except TunerError as error:
        print(f"tuner: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:
        from tuner.core.files import disk_full

        if not disk_full(error):
            raise  # a bug: its traceback (passwords masked) is what a report needs
        print(
            f"tuner: error: no space left on the device ({str(error).splitlines()[0]}); free some space, "
            "or write elsewhere (--out, --storage)",
            file=sys.stderr,
        )
        return 2


def exit_after_main() -> None:
    """`tuner` and `python -m tuner`: run the command, then end the process without the interpreter's teardown.

    Tearing down a process that trained Keras models on TensorFlow took up to
    14 s after a budget run's last card on the 2-core CPU, most of it waiting
    idle in native code (benchmarks/journal.md, "Fifth step"): time the budget had no
    room for. By then every result is on disk and in the database (storage
    calls are synchronous and no tuner thread holds unwritten work), so only
    the output needs flushing.
    """
    status = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
