"""The model card: the evidence for one exported model, as JSON and as Markdown.

It holds what a person needs to trust and compare the model: where it came
from (study, trial, all parameters, seed), how it did in cross-validation
(seed 000's `mean=.. std=.. n=..` line) and once on the test split (accuracy,
loss, per-class precision and recall, confusion matrix), what it costs
(parameters, training time), what it was built with (library versions, data
fingerprint), how it compares with the best seed baseline of the study, and
each deployable format's file, size, agreement with the Keras model and
latency (tuner.results.formats).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tuner.core.record import TrialRecord
from tuner.results.summary import cv_line
from tuner.training.device import accelerator
from tuner.training.models import trainable_parameters

LIBRARIES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "optuna", "numpy", "scikit-learn")
FORMAT_LIBRARIES = ("tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")  # on the card when installed


def library_versions() -> dict[str, str]:
    """Python, the Keras backend and the versions of the libraries that made the model."""
    import keras

    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in LIBRARIES + FORMAT_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 over the arrays' dtypes, shapes and bytes: the same data gives the same hash."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def held_out_figures(predictions: np.ndarray, y_test: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    """Confusion matrix (rows: true label) and per-class precision and recall on the test split."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    matrix = confusion_matrix(y_test, predictions, labels=labels)
    precision, recall, _, support = precision_recall_fscore_support(y_test, predictions, labels=labels, zero_division=0)
    per_class = [
        {"class": name, "precision": float(p), "recall": float(r), "support": int(s)}
        for name, p, r, s in zip(class_names, precision, recall, support)
    ]
    return {"confusion_matrix": matrix.tolist(), "per_class": per_class}


def _cv(trial: Any) -> dict[str, Any]:
    cv = TrialRecord.of(trial).cv
    return {
        "line": cv_line(trial),
        "val_accuracy_mean": cv and cv.val_accuracy_mean,
        "val_accuracy_std": cv and cv.val_accuracy_std,
        "n": cv and cv.n_folds,
        "val_loss_mean": cv and cv.val_loss_mean,
        "overfit_gap": cv and cv.overfit_gap,
        "best_epochs": cv and cv.best_epochs,
    }


def _baseline(trial: Any, baseline: Any) -> dict[str, Any] | None:
    if baseline is None:
        return None
    ours, theirs = TrialRecord.of(trial).accuracy, TrialRecord.of(baseline).accuracy or 0.0
    return {
        "name": TrialRecord.of(baseline).baseline,
        "trial": baseline.number,
        "cv": cv_line(baseline),
        "cv_points_gained": None if ours is None else (ours - theirs) * 100,
        "is_this_trial": baseline.number == trial.number,
    }


def build_card(
    *,
    study: Any,
    trial: Any,
    config: Any,
    spec: Any,
    model: Any,
    dataset: Any,
    test: Any,
    evaluation: Any,
    figures: dict[str, Any],
    train_seconds: float,
    seed: int,
    history: dict[str, list[float]],
    baseline: Any,
    model_file: str,
    artifact_ids: dict[str, str],
    epochs_rule: str,
    precision: str,
) -> dict[str, Any]:
    """Every figure of the card as plain JSON data."""
    x_test, y_test = test
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": model_file,
        "study": {"name": study.study_name, "settings": study.user_attrs.get("config"), "metric_names": study.metric_names},
        "trial": {"number": trial.number, "values": trial.values, "seed": seed, "baseline": TrialRecord.of(trial).baseline},
        "params": dict(trial.params),
        "deterministic": bool(config.deterministic),  # trained with deterministic ops (--deterministic): reproducible
        "spec": spec.to_dict(),
        "cv": _cv(trial),
        "final_training": {
            "epochs": spec.train.epochs,
            "epochs_rule": epochs_rule,
            "images": len(dataset.y_train),
            "seconds": train_seconds,
            "precision": precision,
            "device": accelerator(),
            "history": history,
        },
        "test": {"accuracy": evaluation.accuracy, "loss": evaluation.loss, "images": len(y_test), **figures},
        "class_names": list(dataset.class_names),
        "input_shape": list(dataset.input_shape),
        "preprocessing": "grayscale or RGB to the input's channels, resized to the input shape, pixels scaled to [0, 1]",
        "parameters": {"trainable": trainable_parameters(model), "total": int(model.count_params())},
        "data": {
            "dataset": dataset.name,
            "source": dataset.source,
            "subset": config.subset,
            "train_sha256": fingerprint(dataset.x_train, dataset.y_train),
            "test_sha256": fingerprint(x_test, y_test),
        },
        "libraries": library_versions(),
        "baseline_comparison": _baseline(trial, baseline),
        "artifacts": artifact_ids,
    }


def _formats_table(formats: dict[str, Any]) -> list[str]:
    """Each format's file, size, agreement with the Keras model on the test split, and latency; or why not written."""
    if not formats:
        return []
    method = next((f["latency"]["method"] for f in formats.values() if "latency" in f), "")
    lines = [
        "",
        "## Formats",
        "",
        "Each file was loaded by its own runtime and run on the test split before it was declared written"
        + (f"; latency: {method}." if method else "."),
        "",
        "| format | file | bytes | top-1 agreement | max abs prob. difference | images | ms/image batch 1 "
        "| ms/image batch 64 | runtime |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in formats.items():
        if "rejected" in entry:
            why = entry["rejected"].replace("|", "\\|")  # a table cell
            lines.append(f"| {name} | not written: {why} | | | | | | | |")
            continue
        agreement, latency = entry["agreement"], entry["latency"]
        lines.append(
            f"| {name} | `{entry['file']}` | {entry['bytes']:,} | {agreement['top1_agreement']:.4f} "
            f"| {agreement['max_abs_probability_difference']:.2e} | {agreement['images']} "
            f"| {latency['batch_1_ms_per_image']:.3f} | {latency['batch_64_ms_per_image']:.3f} | {entry['runtime']} |"
        )
    return lines


def to_markdown(card: dict[str, Any], image_link: Callable[[str], str] = lambda name: name) -> str:
    """The card for people. `image_link` turns a plot's file name into the address its image is shown from."""
    test, cv, final = card["test"], card["cv"], card["final_training"]
    trial = card["trial"]
    title = f"# Model card: {card['study']['name']}, trial {trial['number']}"
    if trial["baseline"]:
        title += f" (seed baseline {trial['baseline']})"
    lines = [
        title,
        "",
        f"- Model file: `{card['model_file']}` (Keras native format; load with safe mode)",
        f"- Input: {'x'.join(map(str, card['input_shape']))}, {card['preprocessing']}",
        f"- Cross-validation: {cv['line']}; overfitting gap (val loss - train loss) "
        f"{cv['overfit_gap'] if cv['overfit_gap'] is None else format(cv['overfit_gap'], '+.4f')}",
        f"- Test (held out, evaluated once): accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}, "
        f"{test['images']} images",
        f"- Final training: {final['epochs']} epochs "
        f"({final.get('epochs_rule', 'rounded mean best epoch over the folds')}) on "
        f"{final['images']} images, seed {trial['seed']}, {final['seconds']:.1f}s"
        + (f" on {final['device']} in {final['precision']}" if "precision" in final else ""),
        f"- Parameters: {card['parameters']['trainable']:,} trainable, {card['parameters']['total']:,} in all",
        *(
            [
                f"- Test-time flips: {', '.join(card['test_time_flips'])} (the model averages its class probabilities "
                "over the image and its mirrors)"
            ]
            if card.get("test_time_flips")
            else []
        ),
        f"- Data: {card['data']['dataset']} ({card['data']['source']}), train sha256 "
        f"`{card['data']['train_sha256'][:16]}`, test sha256 `{card['data']['test_sha256'][:16]}`",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in card["libraries"].items()),
    ]
    comparison = card["baseline_comparison"]
    if comparison:
        if comparison["is_this_trial"]:
            lines.append(f"- This trial is the study's best seed baseline ({comparison['name']}).")
        else:
            lines.append(
                f"- Best seed baseline: {comparison['name']} (trial {comparison['trial']}), {comparison['cv']}; "
                f"this model: {comparison['cv_points_gained']:+.2f} points of CV accuracy"
            )
    lines += _formats_table(card.get("formats") or {})
    lines += ["", "## Per class (test split)", "", "| class | precision | recall | images |", "| --- | --- | --- | --- |"]
    lines += [f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['support']} |" for c in test["per_class"]]
    lines += ["", "## Parameters", "", "| parameter | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in sorted(card["params"].items())]
    stem = f"trial-{trial['number']}"
    lines += [
        "",
        "## Plots",
        "",
        f"![learning curves]({image_link(stem + '.curves.png')})",
        f"![confusion matrix]({image_link(stem + '.confusion.png')})",
        "",
    ]
    return "\n".join(lines)
