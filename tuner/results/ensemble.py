"""An averaged ensemble of exported models: one `.keras` file whose output is the mean of its members' probabilities.

The members are the study's best trials, each already trained and tested
once by export; the ensemble's test figures come from their test
probabilities (the test split is not read again), and the saved model is
checked to reproduce them. Its card lists each member's test accuracy beside
the ensemble's. The ensemble loads in Keras' safe mode like any exported model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.files import replacing, sha256_of, write_text
from tuner.results import card, plots
from tuner.results.export import Evaluation, ExportedModel, evaluation_of
from tuner.results.predict import load_model

CHECK_TOLERANCE = 1e-4  # the saved ensemble's probabilities against the mean of its members'


@dataclass
class ExportedEnsemble:
    """The ensemble's files and test figures."""

    model_path: Path
    files: list[Path]
    members: list[int]  # trial numbers
    test_accuracy: float
    evaluation: Evaluation = field(repr=False)


def build_ensemble(models: list[Any]) -> Any:
    """A Keras model that averages the members' class probabilities (members keep their own layers)."""
    import keras

    inputs = keras.Input(shape=models[0].input_shape[1:], name="image")
    outputs = []
    for index, model in enumerate(models):
        model.name = f"member_{index}"
        outputs.append(model(inputs))
    averaged = keras.layers.Average(name="mean_probabilities")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, averaged, name="ensemble")


def export_ensemble(
    study_name: str,
    members: list[ExportedModel],
    test: tuple[np.ndarray, np.ndarray],
    class_names: tuple[str, ...],
    out: Path,
) -> ExportedEnsemble:
    """Average `members` (same input shape) into one model; write it, its card and confusion matrix to `out`."""
    x_test, y_test = test
    probabilities = np.mean([m.evaluation.probabilities for m in members], axis=0)
    evaluation = evaluation_of(probabilities, y_test)
    model = build_ensemble([load_model(m.model_path) for m in members])
    saved = np.asarray(model.predict(x_test, batch_size=256, verbose=0), dtype="float64")
    if float(np.max(np.abs(saved - probabilities))) > CHECK_TOLERANCE:
        raise AssertionError("the ensemble model does not reproduce its members' mean probabilities")
    stem = out / f"ensemble-{'-'.join(str(m.trial_number) for m in members)}"
    model_path = stem.with_suffix(".keras")
    with replacing(model_path) as temporary:
        model.save(temporary)
    figures = card.held_out_figures(evaluation.predictions, y_test, class_names)
    confusion = plots.confusion_matrix(
        Path(f"{stem}.confusion.png"),
        np.array(figures["confusion_matrix"]),
        class_names,
        f"{study_name}, ensemble of {len(members)}: test accuracy {evaluation.accuracy:.4f}",
    )
    summary = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": model_path.name,
        "study": study_name,
        "members": [
            {
                "trial": m.trial_number,
                "model_file": m.model_path.name,
                "test_accuracy": m.test_accuracy,
                "final_epochs": m.final_epochs,
            }
            for m in members
        ],
        "test": {"accuracy": evaluation.accuracy, "loss": evaluation.loss, "images": len(y_test), **figures},
        "class_names": list(class_names),
        "input_shape": list(model.input_shape[1:]),
        "libraries": card.library_versions(),
    }
    summary["model_sha256"] = sha256_of(model_path)
    card_md = write_text(Path(f"{stem}.card.md"), to_markdown(summary))
    card_json = write_text(Path(f"{stem}.card.json"), json.dumps(summary, indent=2) + "\n")  # last: "done"
    return ExportedEnsemble(
        model_path,
        [model_path, confusion, card_json, card_md],
        [m.trial_number for m in members],
        evaluation.accuracy,
        evaluation,
    )


def to_markdown(summary: dict[str, Any]) -> str:
    """The ensemble's card for people."""
    test = summary["test"]
    lines = [
        f"# Ensemble card: {summary['study']}, {len(summary['members'])} models averaged",
        "",
        f"- Model file: `{summary['model_file']}` (Keras native format; load with safe mode); output: the mean of "
        "the members' class probabilities",
        f"- Test (held out, evaluated once per member): accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}, "
        f"{test['images']} images",
        "",
        "## Members",
        "",
        "| trial | model file | final epochs | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m['trial']} | `{m['model_file']}` | {m['final_epochs']} | {m['test_accuracy']:.4f} |"
        for m in summary["members"]
    ]
    lines += [
        f"| ensemble | `{summary['model_file']}` | | {test['accuracy']:.4f} |",
        "",
        "## Per class (test split)",
        "",
        "| class | precision | recall | images |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['support']} |" for c in test["per_class"]]
    return "\n".join(lines) + "\n"
