"""What --deterministic costs in speed: `python benchmarks/determinism.py [--repeats N] [--size S] [--quick]`.

Deterministic ops are switched on for a whole process and cannot be switched
off again, so each measurement runs in a fresh process: the same K-fold
training (tuner.training.harness, the digits, one benchmark model size),
once to trace, then timed, with and without `tuner.training.determinism`.
The two kinds alternate, which goes first swapping every repeat, so that a
change of the machine's load falls on both. It prints every repeat's
seconds of `fit` (all folds, tracing excluded), the paired ratios
with/without and their median, and whether the deterministic processes
agreed on every fold's accuracy to the last bit. Writes
benchmarks/results/determinism.json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/determinism.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks.run import SEED, machine_info, model_spec, write_results  # noqa: E402

FOLDS, EPOCHS = 2, 3
KINDS = ("without", "with")


def child(kind: str, size: str, epochs: int) -> dict:
    """One process's measurement: the harness once to trace, then once timed."""
    from tuner.data import load_dataset
    from tuner.training import determinism
    from tuner.training.harness import cross_validate

    if kind == "with":
        determinism.enable(SEED)
    dataset = load_dataset("digits")
    spec = model_spec(size, dataset, epochs)
    run = lambda: cross_validate(spec, dataset.x_train, dataset.y_train, folds=FOLDS, seed=SEED, max_epochs=epochs)
    run()  # traces and compiles
    result = run()
    return {
        "fit_seconds": sum(fold.seconds for fold in result.folds),
        "fold_val_accuracy": [fold.val_accuracy for fold in result.folds],
        "fold_val_loss": [fold.val_loss for fold in result.folds],
    }


def measure(kind: str, size: str, epochs: int) -> dict:
    """`child` in a fresh process (deterministic ops cannot be turned off once on)."""
    command = [sys.executable, __file__, "--child", kind, "--size", size, "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="pairs of processes (default 4)")
    parser.add_argument("--size", default="large", choices=("small", "mid", "large"), help="benchmark model size")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs per fold (default {EPOCHS})")
    parser.add_argument("--quick", action="store_true", help="one pair, one epoch (a smoke run, not a figure)")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.size, args.epochs)))
        return 0
    repeats, epochs = (1, 1) if args.quick else (args.repeats, args.epochs)
    import keras

    results: dict = {
        "machine": machine_info(),
        "backend": keras.backend.backend(),
        "command": " ".join(["python", "benchmarks/determinism.py", *(argv if argv is not None else sys.argv[1:])]),
        "training": f"digits (1,437 training images), {FOLDS} folds x {epochs} epochs, model {args.size}, "
        "seconds of fit over all folds, tracing excluded",
        "repeats": {kind: [] for kind in KINDS},
    }
    print(f"{'repeat':<7} {'order':<13} {'without s':>10} {'with s':>10} {'ratio':>6}")
    for repeat in range(repeats):
        order = KINDS if repeat % 2 == 0 else KINDS[::-1]
        pair = {kind: measure(kind, args.size, epochs) for kind in order}
        for kind in KINDS:
            results["repeats"][kind].append(pair[kind])
        ratio = pair["with"]["fit_seconds"] / pair["without"]["fit_seconds"]
        print(
            f"{repeat:<7} {order[0] + ' first':<13} {pair['without']['fit_seconds']:>10.2f} "
            f"{pair['with']['fit_seconds']:>10.2f} {ratio:>6.2f}",
            flush=True,
        )
    runs = results["repeats"]
    ratios = [w["fit_seconds"] / o["fit_seconds"] for w, o in zip(runs["with"], runs["without"])]
    results["with_vs_without_seconds"] = ratios
    results["median_ratio"] = statistics.median(ratios)
    same = lambda kind: all(r["fold_val_accuracy"] == runs[kind][0]["fold_val_accuracy"] for r in runs[kind])
    results["identical_accuracies"] = {kind: same(kind) for kind in KINDS}
    print(f"median with/without: {results['median_ratio']:.2f} (above 1: deterministic is slower)")
    print(f"every repeat's fold accuracies identical: {results['identical_accuracies']}")
    if not args.quick:
        write_results("determinism", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
