"""Speed benchmarks: `python benchmarks/run.py [--quick]` prints a table and
writes benchmarks/results/latest.json.

Four measurements, side by side in one run:
- harness: images/s of one fold of `tuner.training.harness.cross_validate` (the code
  path every trial takes) against plain `model.fit` on the same model, fold,
  backend and batch size, in pairs that alternate which runs first, each repeat at least 10 s;
  `harness_vs_fit_ratio` = the median of the paired ratios per
  model size (1.0 = no overhead; goal >= 0.95);
- throughput: plain `model.fit` images/s per Keras backend x model size x
  batch size; each backend in its own subprocess, since KERAS_BACKEND is fixed
  at `import keras`; a backend that is not installed is skipped with a note;
- study: a whole study with pruning (hyperband) and without (none), same
  sampler, seed and trial count: wall time, best CV accuracy, epochs trained;
- storage: seconds per trial of pure bookkeeping (create, report every epoch
  of every fold with a pruning check, complete) for SQLite, a journal file
  and PostgreSQL (skipped with a note when the server cannot be reached).

Every Keras measurement runs in a fresh subprocess (`--worker NAME`), so one
backend's import or a previous model's state cannot colour another figure.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` from a checkout
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
BACKENDS = ("tensorflow", "jax", "torch")
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SEED = 0
MIN_REPEAT_SECONDS = 10.0  # each harness repeat lasts at least this long (a 2 s repeat measured the timer, not the harness)

# Three model sizes, as parameter sets of the default space (search_spaces/cnn.py).
# Multiply-adds per 28x28 image in the names' comments.
MODEL_PARAMS = {
    "small": "seed000-v1",  # 0.74 M: seed 000's v1, batch 32
    "mid": "seed000-VIII",  # 7.4 M: two 32-filter convs, L2, 3x3/2 pooling, batch 32
    "large": {  # 19 M: the 2-block CNN with batch norm, 32-32-64-64, dense 256
        "n_blocks": 2,
        "filters_0": 32,
        "kernel_size_0": 3,
        "convs_0": 2,
        "pooling_0": "max",
        "block_dropout_0": False,
        "filters_1": 64,
        "kernel_size_1": 3,
        "convs_1": 2,
        "pooling_1": "max",
        "block_dropout_1": False,
        "pool_size": 2,
        "padding": "same",
        "activation": "relu",
        "kernel_initializer": "he_uniform",
        "batch_norm": True,
        "conv_l2": False,
        "dense_layers": 1,
        "dense_units_0": 256,
        "dense_l2": False,
        "head_dropout": False,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "lr_schedule": "none",
        "batch_size": 64,
    },
}

# Per mode: how much work each measurement does. Throughput images scale down
# with model cost so that each figure takes a few seconds.
SETTINGS = {
    "quick": dict(
        harness_subset=3000,
        harness_folds=5,
        harness_epochs=2,
        harness_repeats=3,
        throughput_batches=(32, 256),
        throughput_images={"small": 8192, "mid": 2048, "large": 1024},
        throughput_repeats=1,
        study=dict(dataset="digits", subset=0, trials=10, epochs=4, folds=3),
        storage_trials=10,
        storage_steps=50,
    ),
    "full": dict(
        harness_subset=12000,
        harness_folds=5,
        harness_epochs=3,
        harness_repeats=5,
        throughput_batches=(32, 128, 512),
        throughput_images={"small": 24576, "mid": 8192, "large": 4096},
        throughput_repeats=2,
        study=dict(dataset="fashion", subset=4000, trials=20, epochs=5, folds=3),
        storage_trials=50,
        storage_steps=50,
    ),
}


# --------------------------------------------------------------------------- helpers


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_backends() -> dict[str, bool]:
    return {name: importlib.util.find_spec(name) is not None for name in BACKENDS}


# CPU features that set the speed of oneDNN's convolutions: the same "AMD EPYC" name has come with and without them
VECTOR_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block ends
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name", cpu)
    flags = set(fields.get("flags", "").split())
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cpu_family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
        "cpu_features": [feature for feature in VECTOR_FEATURES if feature in flags],
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
        "versions": {
            p: _version(p) for p in ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "optuna", "numpy")
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_results(name: str, results: dict) -> Path:
    """Write a benchmark's figures to benchmarks/results/NAME.json and say where."""
    target = RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
    return target


def _finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


# --------------------------------------------------------------------------- in-worker measurements (import keras)


def model_spec(size: str, dataset, epochs: int, batch_size: int | None = None):
    """The TrialSpec of one benchmark model size, for `dataset`'s image shape."""
    from search_spaces import cnn
    from tuner.search.objective import spec_for_params

    params = MODEL_PARAMS[size]
    params = dict(cnn.BASELINES[params] if isinstance(params, str) else params)
    params["epochs"] = epochs
    if batch_size:
        params["batch_size"] = batch_size
    return spec_for_params(cnn.SPACE, params, dataset, epochs)


def _timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of `function()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _plain_fit(spec, x, y, train_idx, val_idx, epochs: int) -> None:
    """What a person writes by hand: build, compile, fit on one fold with validation."""
    import keras

    from tuner.training import models

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, len(train_idx))
    model.fit(
        x[train_idx],
        y[train_idx],
        validation_data=(x[val_idx], y[val_idx]),
        batch_size=spec.train.batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
    )


def _harness_fold(spec, x, y, folds: int, epochs: int) -> None:
    from tuner.training.harness import cross_validate

    cross_validate(
        spec,
        x,
        y,
        folds=folds,
        seed=SEED,
        split_seed=SEED,
        max_epochs=epochs,
        max_folds=1,
        reporter=lambda step, value: None,
    )


def measure_ratio(
    spec, x, y, *, folds: int, epochs: int, repeats: int, warmup: bool = True, min_seconds: float = 0.0
) -> dict:
    """Harness vs plain `model.fit` on fold 0, in pairs that alternate which goes first.

    Both include building and compiling the model (a trial pays for it too).
    `harness_vs_fit_ratio` is the median over the pairs of (fit seconds /
    harness seconds): each pair runs back to back, so a change of the
    machine's speed between pairs cancels out. With `min_seconds`, the epochs
    are doubled until one harness repeat lasts at least that long, so fixed
    costs and timer noise do not dominate a small model's figure. The ratio
    of the best wall times and of CPU seconds are reported beside it.
    """
    from tuner.training.harness import fold_indices

    train_idx, val_idx = fold_indices(y, folds, 1, SEED)[0]
    if warmup:  # first model in a process pays one-off library set-up; neither side should
        _plain_fit(spec, x[:512], y[:512], train_idx[train_idx < 512], val_idx[val_idx < 512], 1)
    while min_seconds and _timed(lambda: _harness_fold(spec, x, y, folds, epochs))[0] < min_seconds:  # noqa: B023 (called at once)
        epochs *= 2
    harness, plain, harness_cpu, plain_cpu = [], [], [], []
    for repeat in range(repeats):
        order = ("harness", "plain") if repeat % 2 == 0 else ("plain", "harness")
        for which in order:
            if which == "harness":
                wall, cpu = _timed(lambda: _harness_fold(spec, x, y, folds, epochs))
                harness.append(wall), harness_cpu.append(cpu)
            else:
                wall, cpu = _timed(lambda: _plain_fit(spec, x, y, train_idx, val_idx, epochs))
                plain.append(wall), plain_cpu.append(cpu)
    images = len(train_idx) * epochs
    return {
        "batch_size": spec.train.batch_size,
        "train_images_per_fold": len(train_idx),
        "validation_images": len(val_idx),
        "epochs": epochs,
        "repeats": repeats,
        "harness_seconds": harness,
        "fit_seconds": plain,
        "harness_images_per_s": images / min(harness),
        "fit_images_per_s": images / min(plain),
        "harness_vs_fit_ratio": statistics.median(p / h for p, h in zip(plain, harness)),
        "harness_vs_fit_ratio_best": min(plain) / min(harness),
        "harness_cpu_seconds": harness_cpu,
        "fit_cpu_seconds": plain_cpu,
        "harness_vs_fit_cpu_ratio": min(plain_cpu) / min(harness_cpu),
    }


def harness_checks(spec, dataset, folds: int, epochs: int) -> dict:
    """Evidence for the harness' promises: data cached, one compile per trial, fold 2 pays no tracing."""
    import keras

    from tuner.data import load_dataset
    from tuner.training.harness import cross_validate, fold_indices

    compiles = []
    original = keras.Model.compile

    def counting_compile(self, *args, **kwargs):
        compiles.append(1)
        return original(self, *args, **kwargs)

    keras.Model.compile = counting_compile
    try:
        result = cross_validate(
            spec, dataset.x_train, dataset.y_train, folds=folds, seed=SEED, max_epochs=epochs, max_folds=2
        )
    finally:
        keras.Model.compile = original
    started = time.perf_counter()
    again = load_dataset(dataset.name, None, len(dataset.y_train), SEED)
    reload_seconds = time.perf_counter() - started
    return {
        "dataset_cached_per_process": again is load_dataset(dataset.name, None, len(dataset.y_train), SEED),
        "dataset_second_load_seconds": reload_seconds,
        "fold_indices_cached": fold_indices(dataset.y_train, folds, 1, SEED)
        is fold_indices(dataset.y_train, folds, 1, SEED),
        "compiles_for_two_folds": len(compiles),
        "fold_seconds": [f.seconds for f in result.folds],
    }


def worker_harness(settings: dict) -> dict:
    import keras

    from tuner.data import load_dataset

    dataset = load_dataset("fashion", None, settings["harness_subset"], SEED)
    out = {"backend": keras.backend.backend(), "data": f"fashion, stratified subset of {len(dataset.y_train)}", "models": {}}
    epochs = settings["harness_epochs"]
    for size in MODEL_PARAMS:
        spec = model_spec(size, dataset, epochs)
        figures = measure_ratio(
            spec,
            dataset.x_train,
            dataset.y_train,
            folds=settings["harness_folds"],
            epochs=epochs,
            repeats=settings["harness_repeats"],
            min_seconds=MIN_REPEAT_SECONDS,
        )
        print(f"  harness {size}: ratio {figures['harness_vs_fit_ratio']:.3f}", file=sys.stderr, flush=True)
        out["models"][size] = figures
    out["checks"] = harness_checks(model_spec("small", dataset, 1), dataset, settings["harness_folds"], 1)
    return out


def measure_throughput(spec, x, y, images: int, repeats: int) -> dict:
    """Plain `model.fit` images/s on `images` images, after one untimed epoch that compiles."""
    import keras

    from tuner.training import models

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, images)
    x, y = x[:images], y[:images]
    warm = max(spec.train.batch_size * 4, 512)
    model.fit(x[:warm], y[:warm], batch_size=spec.train.batch_size, epochs=1, verbose=0)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(x, y, batch_size=spec.train.batch_size, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    evaluate = {}
    for batch in sorted({spec.train.batch_size, 256}):
        model.evaluate(x[:batch], y[:batch], batch_size=batch, verbose=0)  # traces the step
        started = time.perf_counter()
        model.evaluate(x, y, batch_size=batch, verbose=0)
        evaluate[batch] = len(y) / (time.perf_counter() - started)
    return {
        "images": len(y),
        "seconds": seconds,
        "images_per_s": len(y) / min(seconds),
        "evaluate_images_per_s_batch256": evaluate[256],
        "evaluate_images_per_s_train_batch": evaluate[spec.train.batch_size],
    }


def worker_throughput(settings: dict) -> dict:
    import keras

    from tuner.data import load_dataset

    dataset = load_dataset("fashion", None, 0, SEED)
    out = {"backend": keras.backend.backend(), "models": {}}
    for size in MODEL_PARAMS:
        out["models"][size] = {}
        for batch in settings["throughput_batches"]:
            spec = model_spec(size, dataset, 1, batch)
            figures = measure_throughput(
                spec, dataset.x_train, dataset.y_train, settings["throughput_images"][size], settings["throughput_repeats"]
            )
            print(
                f"  {out['backend']} {size} batch {batch}: {figures['images_per_s']:.0f} images/s",
                file=sys.stderr,
                flush=True,
            )
            out["models"][size][str(batch)] = figures
    return out


WORKERS = {"harness": worker_harness, "throughput": worker_throughput}


# --------------------------------------------------------------------------- orchestration (no keras import)


def run_worker(name: str, mode: str, backend: str) -> dict:
    """Run one measurement in a fresh Python with KERAS_BACKEND=backend."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.json"
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--mode", mode, "--out", str(out)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
        if done.returncode != 0 or not out.exists():
            return {"backend": backend, "error": f"worker {name} exited with {done.returncode}"}
        result = json.loads(out.read_text())
        result["worker_seconds"] = time.perf_counter() - started
        return result


def _study_epochs(storage_url: str, study_name: str) -> dict:
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage_url)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "trials": len(trials),
        "complete": len(complete),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "epochs_trained": sum(len(t.intermediate_values) for t in trials),
        "best_cv_accuracy": max((t.value for t in complete), default=None),
    }


def measure_study(settings: dict, backend: str) -> dict:
    """The same study with pruning on (hyperband) and off (none): wall time, best accuracy, epochs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = settings["study"]
    out = {"backend": backend, **study, "sampler": "tpe", "seed": SEED, "baselines": "none"}
    with tempfile.TemporaryDirectory() as folder:
        for pruner in ("hyperband", "none"):
            url = f"sqlite:///{folder}/{pruner}.db"
            command = [
                sys.executable,
                "-m",
                "tuner",
                "run",
                study["dataset"],
                "--storage",
                url,
                "--study-name",
                pruner,
                "--trials",
                str(study["trials"]),
                "--epochs",
                str(study["epochs"]),
                "--folds",
                str(study["folds"]),
                "--subset",
                str(study["subset"]),
                "--seed",
                str(SEED),
                "--sampler",
                "tpe",
                "--pruner",
                pruner,
                "--baselines",
                "none",
                "--no-progress",
            ]
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
            started = time.perf_counter()
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                out[pruner] = {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
                continue
            out[pruner] = {"wall_seconds": seconds, **_study_epochs(url, pruner)}
            print(
                f"  study pruner={pruner}: {seconds:.0f} s, best {out[pruner]['best_cv_accuracy']}",
                file=sys.stderr,
                flush=True,
            )
    on, off = out.get("hyperband", {}), out.get("none", {})
    if "epochs_trained" in on and "epochs_trained" in off:
        out["epochs_saved_by_pruning"] = off["epochs_trained"] - on["epochs_trained"]
        out["wall_time_saved_fraction"] = 1 - on["wall_seconds"] / off["wall_seconds"]
        if on["best_cv_accuracy"] is not None and off["best_cv_accuracy"] is not None:
            out["best_accuracy_cost_of_pruning"] = off["best_cv_accuracy"] - on["best_cv_accuracy"]
    return out


def measure_storage_url(url: str, trials: int, steps: int) -> dict:
    """Seconds per trial of bookkeeping alone: create, `steps` reports with pruning checks, complete."""
    import optuna

    from tuner.storage.storages import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    name = f"bench-storage-{os.getpid()}-{time.time_ns()}"
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps),
    )

    def objective(trial):
        for step in range(steps):
            trial.report(0.5 + 0.001 * step, step)
            trial.should_prune()  # never prunes (rising curve), but asks the storage like a real trial
        return 0.5

    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - started
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except Exception:
        pass
    return {
        "trials": trials,
        "reports_per_trial": steps,
        "seconds_per_trial": seconds / trials,
        "milliseconds_per_report": 1000 * seconds / (trials * steps),
    }


def measure_storage(trials: int, steps: int) -> dict:
    from tuner.core.errors import TunerError

    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, url in (
            ("sqlite", f"sqlite:///{folder}/bench.db"),
            ("journal", f"journal:///{folder}/bench.log"),
            ("postgresql", POSTGRES_URL),
        ):
            try:
                out[label] = {
                    "url": url if label == "postgresql" else url.split(":")[0] + " (temporary file)",
                    **measure_storage_url(url, trials, steps),
                }
            except TunerError as error:
                out[label] = {"skipped": f"not reachable: {error}"}
            except Exception as error:  # driver missing, server down
                out[label] = {
                    "skipped": f"not reachable: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                }
    return out


# --------------------------------------------------------------------------- table


def render_table(results: dict) -> str:
    lines = []
    m = results["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load at start {m['load_average_at_start']}"
    )
    lines.append(f"mode: {results['mode']}; date {m['date']}")
    harness = results.get("harness", {})
    if "models" in harness:
        lines.append(f"\n(a) harness vs plain model.fit, one fold, backend {harness['backend']}, {harness['data']}")
        lines.append(
            f"{'model':8} {'batch':>5} {'harness img/s':>14} {'fit img/s':>10} {'ratio(median)':>12} "
            f"{'ratio(best)':>14} {'ratio(CPU s)':>13}"
        )
        for size, f in harness["models"].items():
            lines.append(
                f"{size:8} {f['batch_size']:>5} {f['harness_images_per_s']:>14.0f} {f['fit_images_per_s']:>10.0f} "
                f"{f['harness_vs_fit_ratio']:>12.3f} {f['harness_vs_fit_ratio_best']:>14.3f} "
                f"{f['harness_vs_fit_cpu_ratio']:>13.3f}"
            )
        c = harness.get("checks", {})
        if c:
            lines.append(
                f"checks: data cached {c['dataset_cached_per_process']}, folds cached {c['fold_indices_cached']}, "
                f"compiles for 2 folds {c['compiles_for_two_folds']}, "
                f"fold seconds {', '.join(f'{s:.2f}' for s in c['fold_seconds'])}"
            )
    elif harness:
        lines.append(f"\n(a) harness: {harness.get('error')}")
    if results.get("throughput"):
        lines.append("\n(b) throughput, plain model.fit, images/s (train; evaluate at batch 256 in brackets)")
    for backend, t in results.get("throughput", {}).items():
        if "models" not in t:
            lines.append(f"{backend:10} skipped: {t.get('skipped') or t.get('error')}")
            continue
        for size, per_batch in t["models"].items():
            cells = "  ".join(
                f"b{b}: {f['images_per_s']:6.0f} [{f['evaluate_images_per_s_batch256']:6.0f}]" for b, f in per_batch.items()
            )
            lines.append(f"{backend:10} {size:6} {cells}")
    s = results.get("study")
    if s:
        lines.append(
            f"\n(c) study on {s['dataset']} (subset {s['subset'] or 'all'}), {s['trials']} trials, {s['epochs']} epochs, "
            f"{s['folds']} folds, tpe, backend {s['backend']}"
        )
        for pruner in ("hyperband", "none"):
            f = s.get(pruner, {})
            if "error" in f:
                lines.append(f"pruner {pruner:9}: error {f['error']}")
            elif f:
                lines.append(
                    f"pruner {pruner:9}: {f['wall_seconds']:7.1f} s, best CV accuracy {f['best_cv_accuracy']:.4f}, "
                    f"epochs trained {f['epochs_trained']}, complete {f['complete']}, pruned {f['pruned']}"
                )
        if "epochs_saved_by_pruning" in s:
            lines.append(
                f"pruning saved {s['epochs_saved_by_pruning']} epochs ({100 * s['wall_time_saved_fraction']:.0f}% of wall time), "
                f"cost in best accuracy {s.get('best_accuracy_cost_of_pruning', float('nan')):+.4f}"
            )
    st = results.get("storage")
    if st:
        lines.append("\n(d) storage overhead per trial (create + reports with pruning checks + complete, no training)")
        for label, f in st.items():
            if "skipped" in f:
                lines.append(f"{label:10} skipped: {f['skipped']}")
            else:
                lines.append(
                    f"{label:10} {f['seconds_per_trial'] * 1000:8.1f} ms/trial  {f['milliseconds_per_report']:6.2f} ms/report "
                    f"({f['trials']} trials x {f['reports_per_trial']} reports)"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller measurements (under 10 minutes on a quiet 2-core CPU)")
    parser.add_argument("--only", help="comma-separated parts to run: harness,throughput,study,storage (default all)")
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="backend of the harness and study parts (default: $KERAS_BACKEND or tensorflow)",
    )
    parser.add_argument("--out", help="where to write the JSON (default benchmarks/results/latest.json)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = WORKERS[args.worker](SETTINGS[args.mode])
        Path(args.out).write_text(json.dumps(result, indent=2))
        return 0

    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    parts = set((args.only or "harness,throughput,study,storage").split(","))
    available = installed_backends()
    if not available.get(args.backend):
        print(f"backend {args.backend} is not installed", file=sys.stderr)
        return 2
    results: dict = {"mode": mode, "settings": settings, "machine": machine_info(), "backends_installed": available}
    out = Path(args.out) if args.out else RESULTS / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        out.write_text(json.dumps(results, indent=2))

    started = time.perf_counter()
    if "harness" in parts:
        print("(a) harness vs model.fit ...", file=sys.stderr, flush=True)
        results["harness"] = run_worker("harness", mode, args.backend)
        results["harness_vs_fit_ratio"] = {
            size: f["harness_vs_fit_ratio"] for size, f in results["harness"].get("models", {}).items()
        }
        save()
    if "throughput" in parts:
        print("(b) throughput per backend ...", file=sys.stderr, flush=True)
        results["throughput"] = {}
        for backend in BACKENDS:
            if not available[backend]:
                results["throughput"][backend] = {"skipped": f"{backend} is not installed"}
                print(f"  {backend}: skipped, not installed", file=sys.stderr, flush=True)
                continue
            results["throughput"][backend] = run_worker("throughput", mode, backend)
        save()
    if "study" in parts:
        print("(c) study with and without pruning ...", file=sys.stderr, flush=True)
        results["study"] = measure_study(settings, args.backend)
        save()
    if "storage" in parts:
        print("(d) storage overhead ...", file=sys.stderr, flush=True)
        results["storage"] = measure_storage(settings["storage_trials"], settings["storage_steps"])
    results["total_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    save()
    print(render_table(results))
    print(f"\n{time.perf_counter() - started:.0f} s in all; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
