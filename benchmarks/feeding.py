"""Keras' own tf.data pipeline against the tuner's (autotuning off): `python benchmarks/feeding.py [--quick]`.

Given arrays, Keras on TensorFlow feeds `fit` through a tf.data pipeline
whose autotuner adjusts itself while the model trains;
`tuner.training.feeding` gives TensorFlow a plain one instead (shuffled
indices, a gather per batch, two batches prefetched, autotuning off). This
benchmark trains the same compiled models one epoch at a time on the same
images both ways, alternating which goes first, each repeat at least
MIN_REPEAT_SECONDS of training, and prints per model and batch size every
epoch's milliseconds per image, the share of the two cores in use, and
the median of the paired ratios `keras_vs_tuner_seconds` (above 1: the
tuner's pipeline is faster). TensorFlow only (the other backends use no
tf.data). Writes benchmarks/results/feeding.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/feeding.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks.run import SEED, machine_info, model_spec, write_results  # noqa: E402

CASES = (("large", 128), ("large", 64), ("mid", 32), ("small", 32))
IMAGES = 8192
MIN_REPEAT_SECONDS = 10.0


def _compiled(spec, images: int):
    import keras

    from tuner.training import models

    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, images)
    return model


def _epoch(model, data: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one epoch of `fit` on `data`."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(**data, epochs=1, verbose=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(spec, x, y, repeats: int, min_seconds: float = MIN_REPEAT_SECONDS) -> dict:
    """Alternating pairs of epochs, Keras' pipeline against the tuner's, on two models compiled alike."""
    from tuner.training.feeding import fit_data

    feeds = {
        "keras": {"x": x, "y": y, "batch_size": spec.train.batch_size, "shuffle": True},
        "tuner": fit_data(x, y, spec.train.batch_size, seed=SEED),
    }
    models = {name: _compiled(spec, len(y)) for name in feeds}
    for name, data in feeds.items():
        _epoch(models[name], data)  # traces
    first, _ = _epoch(models["keras"], feeds["keras"])
    epochs = max(1, round(min_seconds / first + 0.5))
    seconds: dict[str, list[float]] = {name: [] for name in feeds}
    busy: dict[str, list[float]] = {name: [] for name in feeds}
    for repeat in range(repeats):
        order = ("keras", "tuner") if repeat % 2 == 0 else ("tuner", "keras")
        for name in order:
            wall = cpu = 0.0
            for _ in range(epochs):
                took, used = _epoch(models[name], feeds[name])
                wall, cpu = wall + took, cpu + used
            seconds[name].append(wall)
            busy[name].append(cpu / wall)
    images = len(y) * epochs
    return {
        "images_per_repeat": images,
        "ms_per_image": {name: [s * 1000 / images for s in values] for name, values in seconds.items()},
        "cores_busy": {name: [round(b, 2) for b in values] for name, values in busy.items()},
        "keras_vs_tuner_seconds": statistics.median(k / t for k, t in zip(seconds["keras"], seconds["tuner"])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one pair per case on the digits (a smoke run, not a figure)")
    args = parser.parse_args(argv)
    import keras

    from tuner.data import load_dataset

    if keras.backend.backend() != "tensorflow":
        print("feeding: TensorFlow only (KERAS_BACKEND is set to another backend)", file=sys.stderr)
        return 2
    dataset = load_dataset("digits") if args.quick else load_dataset("fashion", None, IMAGES, SEED)
    repeats = 1 if args.quick else 6
    results: dict = {
        "machine": machine_info(),
        "command": " ".join(["python", "benchmarks/feeding.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": f"{dataset.name}, {len(dataset.y_train)} training images",
        "cases": {},
    }
    print(f"{'model@batch':<12} {'pipeline':<7} {'ms per image, each repeat':<44} {'cores busy':<32} ratio")
    for size, batch in CASES:
        spec = model_spec(size, dataset, 1, batch)
        case = measure(spec, dataset.x_train, dataset.y_train, repeats, 1.0 if args.quick else MIN_REPEAT_SECONDS)
        results["cases"][f"{size}@{batch}"] = case
        for name in ("keras", "tuner"):
            times = " ".join(f"{v:.3f}" for v in case["ms_per_image"][name])
            cores = " ".join(f"{v:.2f}" for v in case["cores_busy"][name])
            ratio = f"{case['keras_vs_tuner_seconds']:.2f}" if name == "tuner" else ""
            print(f"{size + '@' + str(batch):<12} {name:<7} {times:<44} {cores:<32} {ratio}", flush=True)
    if not args.quick:
        write_results("feeding", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
