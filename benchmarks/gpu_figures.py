"""The figures of a `benchmarks/gpu.sh` run, as one JSON object: read from what the run left, never estimated.

    python benchmarks/gpu_figures.py --storage journal:///W/journal.log --study fashion \
        --export W/export --util OUT/gpu-util.csv --phases W/phases.json > OUT/gpu.json

- trials: complete, pruned, failed (a trial still running when the search was
  stopped is failed by then), and the best cross-validation accuracy;
- the exported model's test accuracy, epochs, precision and device, from its card;
- wall seconds of each phase (install, search, export) and of the whole call;
- images trained in the search: every reported step is one epoch of one fold,
  so a trial trained steps x (training images of a fold); aggregate images/s
  is their sum over the search's wall time, a trial's own images/s is its
  images over its duration, and `concurrency` (aggregate / mean of the
  trials' own) says how many trials' worth of training ran at once. (The
  issue's goal compares with one process alone, which is faster than one of
  several sharing the GPU: concurrency is an upper bound of that ratio.)
- GPU utilisation and memory from nvidia-smi's samples (one a second).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FASHION_TRAIN_IMAGES = 60_000  # Fashion-MNIST's training split


def trial_figures(storage_url: str, study_name: str) -> dict[str, Any]:
    """Counts, best value and images trained, from the study itself (its stored settings give the folds' size)."""
    import optuna
    from optuna.trial import TrialState

    from tuner.storage.storages import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, heartbeat=False))
    settings = study.user_attrs.get("config") or {}
    images = settings.get("subset") or FASHION_TRAIN_IMAGES
    fold_images = images - images // settings.get("folds", 5)
    trials = study.get_trials(deepcopy=False)
    states = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.values[0]) if complete else None
    rates, images = [], 0
    for trial in trials:
        trained = len(trial.intermediate_values) * fold_images
        images += trained
        if trained and trial.datetime_start and trial.datetime_complete:
            seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
            if seconds > 0:
                rates.append(trained / seconds)
    started = [t.datetime_start for t in trials if t.datetime_start]
    ended = [t.datetime_complete for t in trials if t.datetime_complete]
    span = (max(ended) - min(started)).total_seconds() if started and ended else None
    return {
        "trials": len(trials),
        **{f"trials_{name}": count for name, count in states.items() if count or name in ("complete", "pruned", "fail")},
        "best_cv_accuracy": best.values[0] if best else None,
        "best_trial": best.number if best else None,
        "best_params": dict(best.params) if best else None,
        "baselines_complete": sorted(str(t.user_attrs["baseline"]) for t in complete if t.user_attrs.get("baseline")),
        "devices": sorted({str(t.user_attrs.get("device")) for t in trials if t.user_attrs.get("device")}),
        "precisions": sorted({str(t.user_attrs.get("precision")) for t in trials if t.user_attrs.get("precision")}),
        "backends": sorted({str(t.user_attrs.get("backend")) for t in trials if t.user_attrs.get("backend")}),
        "images_trained": images,
        "fold_images": fold_images,
        "trials_span_seconds": span,
        "mean_trial_images_per_second": statistics.fmean(rates) if rates else None,
    }


def export_figures(folder: Path) -> dict[str, Any]:
    """The exported model's card: test accuracy, epochs and why, precision, device, training seconds."""
    cards = sorted(folder.glob("*.card.json")) if folder.is_dir() else []
    if not cards:
        return {"exported": False}
    card = json.loads(cards[0].read_text())
    final = card["final_training"]
    return {
        "exported": True,
        "exported_trial": card["trial"]["number"],
        "test_accuracy": card["test"]["accuracy"],
        "test_images": card["test"]["images"],
        "final_epochs": final["epochs"],
        "final_epochs_rule": final.get("epochs_rule"),
        "final_training_seconds": final["seconds"],
        "final_precision": final.get("precision"),
        "final_device": final.get("device"),
        "libraries": card.get("libraries"),
    }


def utilisation_figures(path: Path) -> dict[str, Any]:
    """Summary of nvidia-smi's samples: utilization.gpu %, memory.used MiB (CSV without header, no units)."""
    if not path.is_file():
        return {"gpu_samples": 0, "gpu_note": "no nvidia-smi samples (no GPU here)"}
    utilisation, memory = [], []
    with path.open() as handle:
        for row in csv.reader(handle):
            try:
                utilisation.append(float(row[1]))
                memory.append(float(row[2]))
            except (IndexError, ValueError):
                continue  # a partial last line or "[N/A]"
    if not utilisation:
        return {"gpu_samples": 0, "gpu_note": f"{path.name} has no readable samples"}
    busy = [u for u in utilisation if u > 0]
    return {
        "gpu_samples": len(utilisation),
        "gpu_utilization_mean": statistics.fmean(utilisation),
        "gpu_utilization_median": statistics.median(utilisation),
        "gpu_utilization_max": max(utilisation),
        "gpu_utilization_mean_when_busy": statistics.fmean(busy) if busy else 0.0,
        "gpu_memory_used_max_mib": max(memory),
    }


def figures(storage: str, study: str, export: Path, util: Path, phases: dict[str, Any]) -> dict[str, Any]:
    """Everything, in one object; throughput from the search's own wall time."""
    result: dict[str, Any] = {"phases": phases}
    try:
        result.update(trial_figures(storage, study))
    except Exception as error:  # no study at all: say why, keep the rest
        result["study_error"] = f"{type(error).__name__}: {error}"
    result.update(export_figures(export))
    result.update(utilisation_figures(util))
    search = phases.get("search_seconds")
    if search and result.get("images_trained"):
        result["aggregate_images_per_second"] = result["images_trained"] / search
        if result.get("mean_trial_images_per_second"):
            result["concurrency"] = result["aggregate_images_per_second"] / result["mean_trial_images_per_second"]
    total, accuracy = phases.get("total_seconds"), result.get("test_accuracy")
    finished = result.get("trials_complete", 0) + result.get("trials_pruned", 0)
    if phases.get("cpu_rehearsal"):
        result["goals"] = {"note": "a CPU rehearsal of a tiny study: the GPU goals do not apply"}
    else:
        result["goals"] = {  # issue 15, on one H100 or H200
            "wall_at_most_600_s": None if total is None else total <= 600,
            "test_accuracy_at_least_0.94": None if accuracy is None else accuracy >= 0.94,
            "trials_finished": finished,
            "all_trials_asked_finished": finished >= phases.get("trials_asked", 0),
        }
    return result


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", default="fashion")
    parser.add_argument("--export", type=Path, required=True, help="the export's --out folder")
    parser.add_argument("--util", type=Path, required=True, help="nvidia-smi's CSV samples")
    parser.add_argument("--phases", type=Path, required=True, help="JSON of the script's timings and settings")
    args = parser.parse_args()
    phases = json.loads(args.phases.read_text())
    print(json.dumps(figures(args.storage, args.study, args.export, args.util, phases), indent=2))


if __name__ == "__main__":
    main()
