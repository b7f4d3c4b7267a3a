"""TensorFlow's oneDNN kernels on or off, side by side: `python benchmarks/onednn.py [--quick]`.

The tuner keeps oneDNN on (TensorFlow's default; TF_ENABLE_ONEDNN_OPTS=0
turns it off) and its import notices off stderr
(tuner.core.quiet_tensorflow), so that a one-line error stays one line.
This benchmark measures what turning it off would cost in training speed.
The setting is read once, when
TensorFlow is imported, so each measurement is a process of its own:
processes with oneDNN off and on alternate which goes first, and each
trains the three benchmark models (benchmarks/run.py) as the tuner
compiles them, on a stratified subset of Fashion-MNIST, for at least
MIN_SECONDS after a traced epoch. Reports per model the median of the
paired ratios `off_vs_on_seconds` (above 1: oneDNN on is faster). Writes
benchmarks/results/onednn.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/onednn.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks.run import SEED, machine_info, model_spec, write_results  # noqa: E402

CASES = (("small", 32), ("mid", 32), ("large", 128))
IMAGES = 4096
MIN_SECONDS = 6.0


def _seconds_per_image(spec, x, y) -> float:
    """Seconds per training image of plain fit, after one traced epoch, compiled as the tuner compiles."""
    import keras

    from tuner.training import models

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, len(y))
    model.fit(x[:1024], y[:1024], batch_size=spec.train.batch_size, epochs=1, verbose=0)  # traces the step
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < MIN_SECONDS:
        model.fit(x, y, batch_size=spec.train.batch_size, epochs=1, shuffle=True, verbose=0)
        images += len(y)
    return (time.perf_counter() - started) / images


def worker() -> dict:
    from tuner.data import load_dataset

    dataset = load_dataset("fashion", None, IMAGES, SEED)
    x, y = dataset.x_train, dataset.y_train
    return {f"{size}@{batch}": _seconds_per_image(model_spec(size, dataset, 1, batch), x, y) for size, batch in CASES}


def _measure(onednn: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.json"
        env = {
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "TF_ENABLE_ONEDNN_OPTS": onednn,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": str(REPO),
        }
        subprocess.run([sys.executable, __file__, "--worker", "--out", str(out)], env=env, check=True)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one pair of processes (a smoke run, not a figure)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of processes, alternating which goes first")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Path(args.out).write_text(json.dumps(worker()))
        return 0
    pairs = 1 if args.quick else args.pairs
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for pair in range(pairs):
        for setting in ("off", "on") if pair % 2 == 0 else ("on", "off"):
            runs[setting].append(_measure("0" if setting == "off" else "1"))
            print(f"  pair {pair + 1}, oneDNN {setting}: {runs[setting][-1]}", file=sys.stderr, flush=True)
    cases = {}
    print(f"{'model@batch':<12} {'off ms/img':>11} {'on ms/img':>10} {'off/on':>7}")
    for name in runs["off"][0]:
        off = [run[name] for run in runs["off"]]
        on = [run[name] for run in runs["on"]]
        ratio = statistics.median(a / b for a, b in zip(off, on))
        cases[name] = {"off_seconds_per_image": off, "on_seconds_per_image": on, "off_vs_on_seconds": ratio}
        print(f"{name:<12} {1000 * statistics.median(off):>11.3f} {1000 * statistics.median(on):>10.3f} {ratio:>7.2f}")
    results = {
        "machine": machine_info(),
        "command": " ".join(["python", "benchmarks/onednn.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": f"fashion, stratified subset of {IMAGES}",
        "pairs": pairs,
        "cases": cases,
    }
    write_results("onednn", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
