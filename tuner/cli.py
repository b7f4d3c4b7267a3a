"""The command line: `tuner STUDY [flags]` runs a study; subcommands do the rest.

Bad input never shows a traceback: TunerError and argparse errors print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from tuner.errors import TunerError

COMMANDS = ("run", "report", "export", "predict", "dashboard", "pretrain", "worker")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        self.exit(2, f"tuner: error: {message} (see 'tuner --help')\n")


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    return value


def _study_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="a study name from studies/ (fashion, mnist, digits) or a .toml file")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///tuner.db in this folder)")
    parser.add_argument("--study-name", help="name of the study in the storage (default: the study file's name)")


def _run_flags(parser: argparse.ArgumentParser) -> None:
    _study_flags(parser)
    parser.add_argument("--trials", type=_whole_number, help="how many more trials to run in this call")
    parser.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    parser.add_argument("--folds", type=_whole_number, help="K of the K-fold cross-validation")
    parser.add_argument("--repeats", type=_whole_number, help="how many times to repeat the K folds, reshuffled")
    parser.add_argument("--epochs", type=_whole_number, help="most epochs per fold (the space tunes up to this)")
    parser.add_argument("--subset", type=_whole_number, help="train on a stratified sample of N images")
    parser.add_argument("--seed", type=int, help="seed of the folds and the sampler")
    parser.add_argument("--data-dir", help="where the data set's files are (a folder, or an .npz for mnist)")
    parser.add_argument("--sampler", help="tpe, random, gp, cmaes or nsga2")
    parser.add_argument("--pruner", help="hyperband, median, successive-halving, wilcoxon or none")
    parser.add_argument("--early-stopping", type=_whole_number, metavar="PATIENCE", help="stop a fold after PATIENCE epochs without val-loss improvement")
    parser.add_argument("--baselines", help="'all' (default for a new study), 'none', or names separated by commas")
    parser.add_argument("--objectives", help="accuracy (default), accuracy,time or accuracy,params")
    parser.add_argument("--max-gap", type=float, metavar="G", help="a trial whose mean val loss - train loss exceeds G is infeasible")
    parser.add_argument("--verbose", action="store_true", help="show Keras' per-epoch output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--export-top", type=_whole_number, metavar="K", help="when the study ends, export its K best trials (see 'tuner export')")
    _final_training_flags(parser)


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    from tuner.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY

    parser.add_argument("--heartbeat", type=_whole_number, default=HEARTBEAT_INTERVAL, metavar="S",
                        help=f"seconds between a running trial's heartbeats (default {HEARTBEAT_INTERVAL})")
    parser.add_argument("--grace", type=_whole_number, default=GRACE_PERIOD, metavar="S",
                        help=f"seconds without a heartbeat before a trial is failed and re-queued (default {GRACE_PERIOD})")
    parser.add_argument("--max-retry", type=_whole_number, default=MAX_RETRY, metavar="N",
                        help=f"how many times a dead worker's trial is re-queued (default {MAX_RETRY})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuner", description="Tune Keras CNN image classifiers with Optuna.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    run = commands.add_parser("run", help="run a study (the default: 'tuner fashion' = 'tuner run fashion')")
    _run_flags(run)
    run.add_argument("--workers", type=_whole_number, help="run N worker processes on this machine, sharing --trials")
    worker = commands.add_parser("worker", help="join a study and run its trials until its shared budget is met")
    _run_flags(worker)
    _worker_flags(worker)
    report = commands.add_parser("report", help="print a study's summary without training")
    _study_flags(report)
    report.add_argument("--markdown", metavar="FILE", help="also write the summary to FILE as Markdown")
    export = commands.add_parser("export", help="retrain the best trials, test them once, save .keras files, cards and plots")
    _study_flags(export)
    _export_flags(export, "--top")
    export.add_argument("--data-dir", help="where the data set's files are, if not in the default places")
    predict = commands.add_parser("predict", help="classify PNG/JPEG images or an .npz with an exported model")
    predict.add_argument("model", help="a .keras file written by 'tuner export'")
    predict.add_argument("images", nargs="+", help="PNG/JPEG files, or .npz files with an image array 'x'")
    dashboard = commands.add_parser("dashboard", help="open optuna-dashboard on a study's storage, artifacts included")
    dashboard.add_argument("study", nargs="?", help="name of the study in the storage (default: list them all)")
    dashboard.add_argument("--storage", help="Optuna storage URL (default: sqlite:///tuner.db in this folder)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    dashboard.add_argument("--port", type=_whole_number, default=8080, help="port (default: 8080; 0 picks a free one)")
    pretrain = commands.add_parser("pretrain", help="train conv layers on one data set for studies to start from")
    pretrain.add_argument("source", help="mnist, fashion, digits, an .npz file, or folder:PATH")
    pretrain.add_argument("--out", required=True, help="folder to write conv_weights.npz and architecture.json to")
    pretrain.add_argument("--data-dir", help="where the source's files are (for mnist: an .npz, e.g. ../shared/data/mnist-10k.npz)")
    pretrain.add_argument("--epochs", type=_whole_number, default=5, help="training epochs (seed 002 used 15)")
    pretrain.add_argument("--subset", type=_whole_number, default=0, help="train on a stratified sample of N images")
    pretrain.add_argument("--seed", type=int, default=0, help="seed of the weights")
    return parser


def _export_flags(parser: argparse.ArgumentParser, top: str) -> None:
    parser.add_argument(top, dest="top", type=_whole_number, default=1, metavar="K", help="how many of the best trials (default 1)")
    parser.add_argument("--out", help="folder for the models, cards and plots (default: exports/STUDY_NAME)")
    _final_training_flags(parser)


def _final_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--final-subset", type=_whole_number, metavar="N",
                        help="train the exported models on N training images (0 = all; default: the study's subset)")
    parser.add_argument("--final-epochs", type=_whole_number, metavar="E",
                        help="epochs of the exported models' training (default: the folds' mean best epoch)")
    parser.add_argument("--final-budget", type=float, metavar="SECONDS",
                        help="at most this long per exported model's training: fewer epochs if the trial's speed says so")


def _baselines(text: str | None):
    if text is None:
        return None
    if text == "all":
        return True
    if text == "none":
        return False
    return [name.strip() for name in text.split(",") if name.strip()]


def _overrides(args: argparse.Namespace) -> dict:
    keys = ("trials", "timeout", "folds", "repeats", "epochs", "subset", "seed", "data_dir", "sampler", "pruner", "early_stopping",
            "objectives", "max_gap", "final_subset", "final_epochs", "final_budget")
    overrides = {key: getattr(args, key) for key in keys}
    overrides["baselines"] = _baselines(args.baselines)
    return overrides


def _cmd_run(args) -> int:
    from tuner.config import load_study_config
    from tuner.runner import run_study
    from tuner.summary import render

    config = load_study_config(args.study, _overrides(args))
    if args.workers is not None:
        from tuner.local_workers import run_local_workers

        return run_local_workers(config, args)
    study, interrupted = run_study(
        config, args.storage, args.study_name, verbose=2 if args.verbose else 0, progress=not args.no_progress
    )
    print(render(study))
    if args.export_top and not interrupted:
        _export(study, config, args.storage, args.export_top, None)
    if interrupted:
        print("\nInterrupted: the trial in flight was marked FAIL; run the same command to continue.")
        return 130
    return 0


def _cmd_worker(args) -> int:
    from tuner.config import load_study_config
    from tuner.worker import run_worker

    config = load_study_config(args.study, _overrides(args))
    _, interrupted = run_worker(config, args.storage, args.study_name, args.trials, args.heartbeat, args.grace,
                                args.max_retry, verbose=2 if args.verbose else 0)
    return 130 if interrupted else 0


def _cmd_report(args) -> int:
    from tuner.config import load_study_config
    from tuner.runner import open_study
    from tuner.summary import render

    config = load_study_config(args.study)
    study = open_study(config, args.storage, args.study_name, create=False)
    text = render(study)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(text + "\n")
    return 0


def _export(study, config, storage_url, top: int, out: str | None) -> None:
    from tuner.export import export_study
    from tuner.plots import SKIPPED
    from tuner.storage import artifact_dir, artifact_store

    out = out or f"exports/{study.study_name}"
    exported = export_study(study, config, artifact_store(storage_url), top, out)
    print(f"\nExported to {out} (artifacts in {artifact_dir(storage_url)}):")
    for model in exported:
        print(f"  trial {model.trial_number}: {model.model_path} test accuracy {model.test_accuracy:.4f}, "
              f"{len(model.artifact_ids)} artifacts on the trial; trained {model.final_epochs} epochs ({model.epochs_rule})")
    for name, reason in SKIPPED.items():
        print(f"  {name} not drawn: {reason}")


def _cmd_export(args) -> int:
    from tuner.config import load_study_config
    from tuner.runner import open_study

    config = load_study_config(
        args.study, {"data_dir": args.data_dir, "final_subset": args.final_subset, "final_epochs": args.final_epochs,
                      "final_budget": args.final_budget}
    )
    study = open_study(config, args.storage, args.study_name, create=False)
    _export(study, config, args.storage, args.top, args.out)
    return 0


def _cmd_predict(args) -> int:
    from tuner.predict import predict

    for label, name, probability in predict(args.model, args.images):
        print(f"{label}: {name} ({probability:.3f})")
    return 0


def _cmd_dashboard(args) -> int:
    from tuner.dashboard import serve

    return serve(args.study, args.storage, host=args.host, port=args.port)


def _cmd_pretrain(args) -> int:
    from tuner.data import load_dataset
    from tuner.pretrained import pretrain

    if args.epochs < 1:
        raise TunerError(f"--epochs must be a whole number >= 1, got {args.epochs}")
    dataset = load_dataset(args.source, args.data_dir, args.subset, args.seed)
    architecture = pretrain(dataset, args.out, epochs=args.epochs, seed=args.seed)
    print(
        f"pretrained on {dataset.name} ({len(dataset.y_train)} images, {args.epochs} epochs): "
        f"train accuracy {architecture['train_accuracy']:.4f}, val accuracy {architecture['val_accuracy']:.4f}; "
        f"conv weights in {args.out} (use: pretrained = \"{args.out}\" in a study file)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # its notice on stderr would break one-line errors
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        argv.insert(0, "run")  # `tuner fashion ...` means `tuner run fashion ...`
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        commands = {
            "run": _cmd_run, "report": _cmd_report, "export": _cmd_export, "predict": _cmd_predict,
            "dashboard": _cmd_dashboard, "pretrain": _cmd_pretrain, "worker": _cmd_worker,
        }
        return commands[args.command](args)
    except TunerError as error:
        print(f"tuner: error: {error}", file=sys.stderr)
        return error.exit_code
