"""Several small batches per compiled call against one: `python benchmarks/execution.py [--quick]`.

`tuner.training.models.compile_model` runs enough batches per compiled call
for IMAGES_PER_EXECUTION images (steps_per_execution), so that Python's
round trip per call is not paid on every small batch. This benchmark
trains the same model on the same images both ways, in pairs that
alternate which goes first, each repeat at least 10 s of training, and
reports per model and batch size the median of the paired ratios
`single_vs_batched_seconds` (above 1: batching the calls is faster). Batch
256 runs one batch per call either way: its ratio shows the noise. Each
backend runs in its own subprocess (KERAS_BACKEND is fixed at import);
one that is not installed is skipped with a note. Writes
benchmarks/results/execution.json.
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
if str(REPO) not in sys.path:  # `python benchmarks/execution.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks.run import SEED, installed_backends, machine_info, model_spec, write_results  # noqa: E402

CASES = (("small", 16), ("small", 32), ("mid", 32), ("large", 128), ("small", 256))
IMAGES = 8192
MIN_REPEAT_SECONDS = 10.0


def _train_seconds(spec, x, y, epochs: int, one_batch_per_call: bool) -> float:
    """Seconds of `epochs` epochs of plain fit after one traced epoch, compiled as the tuner compiles."""
    import keras

    from tuner.training import models

    default = models.IMAGES_PER_EXECUTION
    models.IMAGES_PER_EXECUTION = 1 if one_batch_per_call else default  # 1 image: one batch per call at any size
    try:
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        model = models.build_model(spec.model)
        models.compile_model(model, spec.train, len(y))
    finally:
        models.IMAGES_PER_EXECUTION = default
    warm = max(4 * spec.train.batch_size, 1024)
    model.fit(x[:warm], y[:warm], batch_size=spec.train.batch_size, epochs=1, verbose=0)  # traces both steps
    started = time.perf_counter()
    model.fit(x, y, batch_size=spec.train.batch_size, epochs=epochs, shuffle=True, verbose=0)
    return time.perf_counter() - started


def worker(repeats: int) -> dict:
    import keras

    from tuner.data import load_dataset
    from tuner.training.models import steps_per_execution

    dataset = load_dataset("fashion", None, IMAGES, SEED)
    x, y = dataset.x_train, dataset.y_train
    out: dict = {"backend": keras.backend.backend(), "data": f"fashion, stratified subset of {len(y)}", "cases": {}}
    for size, batch in CASES:
        spec = model_spec(size, dataset, 1, batch)
        epochs = 1
        while _train_seconds(spec, x, y, epochs, one_batch_per_call=False) < MIN_REPEAT_SECONDS:
            epochs *= 2
        single, batched = [], []
        for repeat in range(repeats):
            for one in (True, False) if repeat % 2 == 0 else (False, True):
                (single if one else batched).append(_train_seconds(spec, x, y, epochs, one_batch_per_call=one))
        ratio = statistics.median(s / b for s, b in zip(single, batched))
        name = f"{size}@{batch}"
        print(f"  {out['backend']} {name}: {ratio:.2f}", file=sys.stderr, flush=True)
        out["cases"][name] = {
            "steps_per_execution": steps_per_execution(batch),
            "epochs": epochs,
            "single_seconds": single,
            "batched_seconds": batched,
            "single_images_per_s": len(y) * epochs / min(single),
            "batched_images_per_s": len(y) * epochs / min(batched),
            "single_vs_batched_seconds": ratio,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one pair per case (a smoke run, not a figure)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args.repeats)))
        return 0
    repeats = 1 if args.quick else 3
    results: dict = {
        "machine": machine_info(),
        "command": " ".join(["python", "benchmarks/execution.py", *(argv or sys.argv[1:])]),
    }
    results["backends"] = {}
    for backend, installed in installed_backends().items():
        if backend == "torch":
            continue  # one batch per call there (steps_per_execution)
        if not installed:
            results["backends"][backend] = {"skipped": f"{backend} is not installed"}
            continue
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "out.json"
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
            command = [sys.executable, __file__, "--worker", "--repeats", str(repeats), "--out", str(out)]
            done = subprocess.run(command, env=env)
            results["backends"][backend] = (
                json.loads(out.read_text()) if done.returncode == 0 else {"error": f"worker exited with {done.returncode}"}
            )
    print(f"{'backend':<11} {'model@batch':<12} {'calls of':>8} {'single img/s':>13} {'batched img/s':>14} {'ratio':>6}")
    for backend, figures in results["backends"].items():
        if "cases" not in figures:
            print(f"{backend:<11} {figures.get('skipped') or figures.get('error')}")
            continue
        for name, case in figures["cases"].items():
            print(
                f"{backend:<11} {name:<12} {case['steps_per_execution']:>8} {case['single_images_per_s']:>13.0f} "
                f"{case['batched_images_per_s']:>14.0f} {case['single_vs_batched_seconds']:>6.2f}"
            )
    write_results("execution", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
