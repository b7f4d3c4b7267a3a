"""The study summary: best trial, its parameters, and the seed baselines beside it.

The same text ends a run and is printed by `tuner report`; `to_markdown`
writes it for a file.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tuner import constraints, pareto


def cv_line(trial: optuna.trial.FrozenTrial) -> str:
    """Seed 000's style: 'Accuracy: mean=90.697 std=0.336, n=5'."""
    attrs = trial.user_attrs
    if "val_accuracy_mean" not in attrs:
        return "not evaluated"
    return (
        f"Accuracy: mean={attrs['val_accuracy_mean'] * 100:.3f} "
        f"std={attrs['val_accuracy_std'] * 100:.3f}, n={attrs['n_folds']}"
    )


def _accuracy(trial) -> float | None:
    return trial.user_attrs.get("val_accuracy_mean")


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best trial of a single-objective study, or the Pareto front otherwise."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:  # every complete trial broke the --max-gap constraint
            return []
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def summary_rows(study: optuna.Study) -> dict:
    """Plain data behind the summary (also used by tests and export)."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    best = best_trials(study)
    baselines = [t for t in trials if "baseline" in t.user_attrs]
    return {"study": study.study_name, "counts": counts, "best": best, "baselines": baselines}


def _baseline_comparison(best, baselines) -> list[str]:
    lines = []
    if best is None or _accuracy(best) is None:
        return lines
    for trial in baselines:
        accuracy = _accuracy(trial)
        name = trial.user_attrs["baseline"]
        if accuracy is None:
            lines.append(f"{name:<18} {trial.state.name.lower():<9} {trial.user_attrs.get('stopped', '')}")
            continue
        delta = (_accuracy(best) - accuracy) * 100
        lines.append(
            f"{name:<18} {cv_line(trial):<40} gap={trial.user_attrs['overfit_gap']:+.3f} "
            f"time={trial.user_attrs['seconds']:.0f}s  best vs {name}: {delta:+.1f} points"
        )
    return lines


def render(study: optuna.Study) -> str:
    """The summary as plain text (Markdown-compatible)."""
    rows = summary_rows(study)
    counts = rows["counts"]
    lines = [
        f"# Study {rows['study']}",
        "",
        f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed, "
        f"{counts['RUNNING']} running, {counts['WAITING']} waiting",
        "",
    ]
    gap_lines = constraints.summary_lines(study)
    if gap_lines:
        lines += gap_lines + [""]
    if not rows["best"]:
        lines.append("No feasible trial yet." if counts["COMPLETE"] else "No trial has completed yet.")
        if counts["COMPLETE"] and len(study.directions) > 1:  # still show where the baselines stand
            lines += [""] + pareto.front_lines(study)
        return "\n".join(lines)
    title = "Best trial" if len(rows["best"]) == 1 else "Pareto-optimal trials"
    lines.append(f"## {title}")
    for trial in rows["best"]:
        attrs = trial.user_attrs
        label = f" ({attrs['baseline']})" if "baseline" in attrs else ""
        values = ", ".join(f"{name}={value:.4g}" for name, value in zip(study.metric_names or ["value"], trial.values))
        lines += [
            "",
            f"Trial {trial.number}{label}: {values}",
            f"  {cv_line(trial)}",
            f"  overfitting gap (val loss - train loss): {attrs.get('overfit_gap', float('nan')):+.4f}",
            f"  train accuracy {attrs.get('train_accuracy_mean', float('nan')) * 100:.2f}%, "
            f"{attrs.get('trainable_params', 0):,} trainable parameters, "
            f"{attrs.get('seconds', 0):.1f}s ({attrs.get('seconds_per_fold', 0):.1f}s per fold)",
            "  parameters:",
        ]
        lines += [f"    {key} = {value}" for key, value in sorted(trial.params.items())]
    comparison = _baseline_comparison(rows["best"][0], rows["baselines"])
    if comparison:
        lines += ["", "## Seed baselines (same folds, same epochs)", ""] + comparison
    if len(study.directions) > 1:
        lines += [""] + pareto.front_lines(study)
    return "\n".join(lines)
