"""The study summary: best trial (or Pareto front), its parameters, and the seed baselines beside it.

The same text ends a run and is printed by `tuner report`; it is Markdown
too, for `--markdown FILE`.
"""

from __future__ import annotations

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tuner.core.record import TrialRecord
from tuner.results import ranking


def cv_line(trial: FrozenTrial) -> str:
    """Seed 000's style: 'Accuracy: mean=90.697 std=0.336, n=5'."""
    cv = TrialRecord.of(trial).cv
    if cv is None:
        return "not evaluated"
    return f"Accuracy: mean={cv.val_accuracy_mean * 100:.3f} std={cv.val_accuracy_std * 100:.3f}, n={cv.n_folds}"


LATENCY_METRIC = "batch1_latency_ms"  # (tuner.search.study.METRIC_NAMES["latency"]): the front shows a latency column


def _figures(trial: FrozenTrial, latency: bool = False) -> str:
    cv = TrialRecord.of(trial).cv
    if cv is None:
        return f"{'-':>9} {'-':>9} {'-':>11}" + f" {'-':>10}" * latency
    figures = f"{cv.val_accuracy_mean * 100:8.3f}% {cv.seconds_per_fold:8.2f}s {cv.trainable_params:>11,}"
    if latency:
        figures += f" {cv.latency_ms:8.3f}ms" if cv.latency_ms is not None else f" {'-':>10}"
    return figures


def front_lines(study: optuna.Study) -> list[str]:
    """The Pareto front as a table (accuracy, seconds per fold, parameters, latency), then each baseline's standing."""
    front = ranking.pareto_front(study)
    latency = LATENCY_METRIC in (study.metric_names or [])
    goals = ", ".join(
        f"{name} {'up' if d == StudyDirection.MAXIMIZE else 'down'}"
        for name, d in zip(study.metric_names or [], study.directions)
    )
    lines = [
        f"## Pareto front ({goals}): {len(front)} trial{'s' * (len(front) != 1)}",
        "",
        f"{'trial':>5} {'accuracy':>9} {'s/fold':>9} {'params':>11}" + f" {'batch-1':>10}" * latency,
    ]
    for trial in front:
        lines.append(f"{trial.number:>5} {_figures(trial, latency)}  {TrialRecord.of(trial).baseline or ''}".rstrip())
    baselines = [t for t in study.get_trials(deepcopy=False) if TrialRecord.of(t).baseline]
    if baselines:
        lines += ["", "## Where the seed baselines stand", ""]
        width = max(len(TrialRecord.of(t).baseline or "") for t in baselines)
        for trial in baselines:
            lines.append(
                f"{TrialRecord.of(trial).baseline:<{width}} trial {trial.number:>3} {_figures(trial, latency)}  "
                f"{ranking.standing(trial, front, study.directions)}"
            )
    return lines


def _constraint_lines(study: optuna.Study) -> list[str]:
    """The --max-gap limit and which complete trials broke it."""
    max_gap = (study.user_attrs.get("config") or {}).get("max_gap")
    if max_gap is None:
        return []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    broken = ranking.infeasible(study)
    line = (
        f"Overfitting constraint: val loss - train loss <= {max_gap:g}; "
        f"{len(broken)} of {len(complete)} complete trials infeasible"
    )
    if broken:
        gaps = [(t.number, (TrialRecord.of(t).cv or None)) for t in broken]
        line += " (" + ", ".join(f"trial {n} gap {cv.overfit_gap if cv else float('nan'):+.4f}" for n, cv in gaps) + ")"
    return [line, ""]


def _baseline_lines(best: FrozenTrial, baselines: list[FrozenTrial]) -> list[str]:
    ours = TrialRecord.of(best).accuracy
    if ours is None:
        return []
    lines = []
    for trial in baselines:
        stored = TrialRecord.of(trial)
        name, cv = stored.baseline or "", stored.cv
        if cv is None:
            lines.append(f"{name:<18} {trial.state.name.lower():<9} {stored.stopped or ''}")
            continue
        lines.append(
            f"{name:<18} {cv_line(trial):<40} gap={cv.overfit_gap:+.3f} time={cv.seconds:.0f}s  "
            f"best vs {name}: {(ours - cv.val_accuracy_mean) * 100:+.1f} points"
        )
    return lines


def render(study: optuna.Study, section: list[str] | None = None) -> str:
    """The summary as plain text (Markdown-compatible).

    `section`: the strategy's own account of the search, in place of the seed baselines' comparison.
    """
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    lines = [
        f"# Study {study.study_name}",
        "",
        f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed, "
        f"{counts['RUNNING']} running, {counts['WAITING']} waiting",
        "",
    ]
    lines += _constraint_lines(study)
    best = ranking.best_trials(study)
    if not best:
        lines.append("No feasible trial yet." if counts["COMPLETE"] else "No trial has completed yet.")
        if counts["COMPLETE"] and len(study.directions) > 1:  # still show where the baselines stand
            lines += [""] + front_lines(study)
        return "\n".join(lines)
    lines.append("## Best trial" if len(best) == 1 else "## Pareto-optimal trials")
    for trial in best:
        stored = TrialRecord.of(trial)
        cv = stored.cv
        label = f" ({stored.baseline})" if stored.baseline else ""
        values = ", ".join(f"{name}={value:.4g}" for name, value in zip(study.metric_names or ["value"], trial.values))
        lines += ["", f"Trial {trial.number}{label}: {values}", f"  {cv_line(trial)}"]
        if cv is not None:
            lines += [
                f"  overfitting gap (val loss - train loss): {cv.overfit_gap:+.4f}",
                f"  train accuracy {cv.train_accuracy_mean * 100:.2f}%, {cv.trainable_params:,} trainable parameters, "
                f"{cv.seconds:.1f}s ({cv.seconds_per_fold:.1f}s per fold)",
            ]
        lines += ["  parameters:"] + [f"    {key} = {value}" for key, value in sorted(trial.params.items())]
    if section:
        lines += [""] + section
    else:
        baselines = [t for t in trials if TrialRecord.of(t).baseline]
        comparison = _baseline_lines(best[0], baselines)
        if comparison:
            lines += ["", "## Seed baselines (same folds, same epochs)", ""] + comparison
    if len(study.directions) > 1:
        lines += [""] + front_lines(study)
    return "\n".join(lines)
