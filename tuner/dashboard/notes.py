"""Markdown notes that optuna-dashboard shows on a study's and a trial's page.

A study note says what the study is and how to read its charts: one
intermediate value per epoch of every fold, so a step reads as fold and
epoch. Export writes a note on each exported trial (its model card, whose
images link to the trial's artifacts). Notes live in the study's system
attributes, so a trial that finished long ago can still get one.
"""

from __future__ import annotations

import optuna

from tuner.storage.artifacts import trial_id_for
from tuner.storage.optuna_compat import storage_of, study_id_of


def study_note(study: optuna.Study) -> str:
    """The study note, from what the runner stored in the study's user attributes."""
    attrs = study.user_attrs
    config = attrs.get("config", {})
    epochs = config.get("epochs")
    folds = config.get("folds", "K")
    repeats = config.get("repeats", 1)
    metrics = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    objectives = ", ".join(f"`{name}` ({direction.name.lower()})" for name, direction in zip(metrics, study.directions))
    lines = [f"## {study.study_name}", ""]
    if attrs.get("description"):
        lines += [attrs["description"], ""]
    lines += [
        f"**Objectives:** {objectives}, over {folds}-fold cross-validation"
        + (f" repeated {repeats} times." if repeats and repeats > 1 else "."),
        "",
    ]
    lines += [
        "**Intermediate values** are the validation accuracy after each epoch of each fold, "
        "one step per epoch across all folds: "
        f"`{attrs.get('steps', 'step = fold_index * epochs + epoch_index (both 0-based)')}`."
    ]
    if epochs:
        last = folds * repeats * epochs - 1 if isinstance(folds, int) else None
        lines += [
            f"With {epochs} epochs per fold, step *s* is fold `s // {epochs} + 1`, epoch `s % {epochs} + 1`"
            + (f" (steps 0..{last})." if last is not None else ".")
        ]
    lines += ["A pruned trial stops at its last step; its user attribute `stopped` names the fold and epoch.", ""]
    if config:
        settings = ", ".join(f"{key}={value}" for key, value in config.items())
        lines += [f"**Settings** (a resumed study must keep them): {settings}.", ""]
    lines += [
        "**User attributes** of a trial come from the training harness: mean and std of validation "
        "accuracy and loss across folds, the overfit gap, best epochs, trainable parameters, seconds, "
        "seed, Keras backend; `baseline` names a hand-made seed model.",
        "",
        "Exported trials carry a note with their model summary and test accuracy, "
        "and their model card and plots as artifacts.",
    ]
    return "\n".join(lines)


def write_study_note(study: optuna.Study, overwrite: bool = False) -> bool:
    """Save `study_note(study)` unless the study has a note already (someone may have edited it)."""
    from optuna_dashboard import get_note, save_note  # loaded when a note is written, not by every run

    if get_note(study) and not overwrite:
        return False
    save_note(study, study_note(study))
    return True


def _trial(study: optuna.Study, trial_number: int) -> optuna.Trial:
    """An optuna.Trial handle on a (possibly finished) trial, as save_note and get_note want.

    A plain-sampler Study keeps Trial() from touching the study's real sampler.
    """
    quiet = optuna.Study(study_name=study.study_name, storage=storage_of(study), sampler=optuna.samplers.RandomSampler())
    return optuna.Trial(quiet, trial_id_for(study, trial_number))


def write_trial_note(study: optuna.Study, trial_number: int, markdown: str) -> None:
    """Save a Markdown note on trial `trial_number`, finished or not (export calls this)."""
    from optuna_dashboard import save_note

    save_note(_trial(study, trial_number), markdown)


def trial_note(study: optuna.Study, trial_number: int) -> str:
    """The note on trial `trial_number` ('' if none)."""
    from optuna_dashboard import get_note

    note: str = get_note(_trial(study, trial_number))
    return note


def artifact_link(study: optuna.Study, trial_number: int, artifact_id: str) -> str:
    """The dashboard's own address of a trial's artifact, for images in a note (relative to the server)."""
    return f"/artifacts/{study_id_of(study)}/{trial_id_for(study, trial_number)}/{artifact_id}"
