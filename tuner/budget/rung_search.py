"""The search of a budget study: which trial runs next, at which fidelity, and judging it there.

`BudgetSearch.next_job` is asked before every trial, by `tuner run` in one
process and by every worker under the study lock: it enqueues the promotion
that is due (tuner.budget.rungs) if it fits before the search's deadline,
else the space's next portfolio start not judged yet, else the next seed
baseline, else lets the sampler draw a new configuration for rung 0; it
returns False once nothing fits in the time left, or once the plan's arm
(tuner.budget.plan.ARMS: starts only, no starts, one start) has judged what
it judges. Where the final phase cannot use its time (its best MAX_MEMBERS
configurations would each reach `max_final_epochs` early: small images, few
of them), the search, once at its deadline, goes on into what they leave
and judges there only configurations no slower to train than they are.
`BudgetSearch.__call__`
judges a trial at its rung: one fold's training part (the rung's images),
for the epochs the configuration's final training would get (a promoted one
keeps those of the rung below), with a cosine learning rate to zero, one
validation at the end. A configuration that could not train even
the policy's `min_final_epochs` of the final model in the final phase is rejected
before any training, with the reason: the space fits the budget.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.budget.plan import (
    DEFAULT_POLICY,
    MATCHED,
    MAX_MEMBERS,
    BudgetPlan,
    PlanPolicy,
    Rung,
    final_model_seconds,
    final_phase_seconds,
    final_seconds_per_image,
    make_plan,
    slowest_judged,
)
from tuner.budget.rungs import extrapolate, promotions
from tuner.core import record
from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.spec import TrialSpec
from tuner.core.speed import SpeedModel
from tuner.results import ranking
from tuner.search.objective import drawn_params, spec_for_params
from tuner.search.study import Prepared
from tuner.search.typical_speed import typical_seconds_per_image


def budget_recipe(spec: TrialSpec, epochs: int) -> TrialSpec:
    """The budget's training recipe for `spec`: `epochs` epochs, learning rate cosine to zero over them."""
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=epochs, lr_schedule="cosine"))


def rung_harness(rung: Rung, epochs: int, folds: int) -> dict[str, Any]:
    """The K-fold harness options of a judgement at `rung`: one fold, the rung's images, one validation at the end."""
    return {
        "folds": folds,
        "max_epochs": epochs,
        "max_folds": 1,
        "train_size": rung.images,
        "validation_size": rung.validation_images,
        "validate_last_only": True,
    }


def plan_for(
    prepared: Prepared,
    speed: SpeedModel,
    *,
    started: float,
    now: float,
    workers: int = 1,
    policy: PlanPolicy = DEFAULT_POLICY,
) -> BudgetPlan:
    """The plan of `prepared.config.budget` for this data set, space and machine (tuner.budget.plan).

    A single cheap rung gives its arm over to `policy.single_rung_arm` (see PlanPolicy), in one process only.
    """
    config, dataset = prepared.config, prepared.dataset
    if config.budget is None:
        raise TunerError("a plan needs a time budget: give --budget DURATION")
    final_seconds = final_phase_seconds(config.budget, started, now, policy)
    slowest = slowest_judged(final_seconds, len(dataset.y_train), policy)  # slower ones are rejected unjudged
    plan = make_plan(
        budget=config.budget,
        started=started,
        now=now,
        train_images=len(dataset.y_train),
        validation_images=len(dataset.y_train) // config.folds,
        num_classes=dataset.num_classes,
        seconds_per_image=typical_seconds_per_image(prepared, speed, config.seed, slowest_judged=slowest),
        eval_factor=speed.eval_factor,
        trace_seconds=speed.trace_seconds,
        workers=workers,
        policy=policy,
    )
    cheap = len(plan.rungs) == 1 and plan.rungs[0].images < plan.pool_images  # one rung, on part of the pool
    if cheap and workers == 1 and policy.arm == DEFAULT_POLICY.arm and policy.single_rung_arm:
        # the first start that fits (the one "none" trains) would gain epochs from the search's time
        start_epochs = list(BudgetSearch(prepared, plan, speed).start_epochs().values())
        if start_epochs and start_epochs[0] < policy.max_final_epochs:
            plan = dataclasses.replace(plan, policy=dataclasses.replace(policy, arm=policy.single_rung_arm))
    return plan


class BudgetSearch:
    """Runs a budget study's search within its plan (see the module's docstring)."""

    def __init__(
        self,
        prepared: Prepared,
        plan: BudgetPlan,
        speed: SpeedModel,
        clock: Callable[[], float] = time.time,
        announce: Callable[[str], None] = lambda line: None,
    ):
        if len(prepared.config.objectives) > 1:
            raise TunerError("--budget plans for accuracy alone; leave out --objectives, or --budget to weigh time or size")
        self.prepared, self.plan, self.speed, self.clock, self.announce = prepared, plan, speed, clock, announce
        self.deadline = plan.search_deadline  # later once the search goes on into what the final phase cannot use
        self.extended = False  # whether it asked for that yet (once, at the plan's deadline)
        self.slowest_final = math.inf  # in the extension: the slowest final speed (s per image) it judges

    # -- choosing the next trial ---------------------------------------------------------------

    def _refresh_speed(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        """Correct the speed model by what finished trials took (training only) against what it predicted."""
        predicted, measured = [], []
        for trial in trials:
            stored = TrialRecord.of(trial)
            spec, took = stored.spec, stored.train_seconds_per_image
            if trial.state == TrialState.COMPLETE and spec is not None and took:
                predicted.append(self.speed.train_seconds_per_image(spec, corrected=False))
                measured.append(took)
        self.speed = self.speed.corrected(predicted, measured)

    def epochs_at(self, spec: TrialSpec, rung: Rung, kept: int | None = None) -> int:
        """The epochs `spec` trains at `rung`: those of its final training, at its predicted speed.

        A promoted configuration keeps the epochs it was judged with one rung down (`kept`), so that
        its rungs differ in data alone, whatever the speed model learnt in between.
        """
        if kept and rung.epochs == MATCHED:
            return kept
        return self.plan.epochs_for(rung, self.speed.train_seconds_per_image(spec) * self.plan.policy.speed_margin)

    def start_epochs(self) -> dict[str, int]:
        """The epochs each portfolio start this search would judge trains at rung 0 (what the plan prints)."""
        if not self.plan.policy.judges_starts or self.prepared.config.pretrained:
            return {}
        space, dataset, config = self.prepared.space, self.prepared.dataset, self.prepared.config
        traits, epochs = self.prepared.objective.traits, {}
        for name, params in space.portfolio.items():
            spec = spec_for_params(space, params, dataset, config.epochs, traits)
            if not spec.model.problems() and self.speed.train_seconds_per_image(spec) <= self.plan.slowest_judged:
                epochs[name] = self.epochs_at(spec, self.plan.rungs[0])
        return epochs

    def rung_seconds(self, spec: TrialSpec, rung: Rung, kept: int | None = None) -> float:
        """Predicted wall seconds of judging `spec` at `rung`."""
        return self.speed.fit_seconds(spec, rung.images, self.epochs_at(spec, rung, kept), rung.validation_images)

    def next_job(self, study: optuna.Study) -> bool:
        """Enqueue the next trial's configuration and rung, or leave a new one to the sampler; False when none fits."""
        if self._next_job(study):
            return True
        return not self.extended and self._extend(study)

    def final_seconds_needed(self, study: optuna.Study) -> tuple[float, float] | None:
        """The most the final phase takes with the search's ranking as it stands (its best MAX_MEMBERS, the slowest
        of them for each one missing, each at `max_final_epochs`), and the slowest one's final speed; None before
        any configuration is judged."""
        plan, speed = self.plan, self.speed
        ranked = [TrialRecord.of(t) for t in ranking.best_trials(study, top=MAX_MEMBERS)]
        speeds = [final_seconds_per_image(stored, speed, plan.policy) for stored in ranked if stored.spec is not None]
        if not speeds:
            return None
        speeds += [max(speeds)] * (MAX_MEMBERS - len(speeds))
        seconds = [final_model_seconds(s, plan.train_images, speed.trace_seconds, plan.budget, plan.policy) for s in speeds]
        return sum(seconds), max(speeds)

    def _extend(self, study: optuna.Study) -> bool:
        """At the plan's deadline, go on searching until the final phase's need (final_seconds_needed) is all that
        is left of it, if a next job fits there; once."""
        self.extended = True
        needed = self.final_seconds_needed(study) if self.plan.policy.draws else None
        if needed is None:
            return False  # (an arm without draws judges what it judges, then stops)
        seconds, self.slowest_final = needed
        self.deadline = max(self.plan.search_deadline, self.plan.final_deadline - seconds)
        if not self._next_job(study):
            self.deadline, self.slowest_final = self.plan.search_deadline, math.inf
            return False
        plan = self.plan
        self.announce(
            f"  the final phase needs at most {seconds:.0f}s of its {plan.final_deadline - plan.search_deadline:.0f}s "
            f"({MAX_MEMBERS} models x {plan.policy.max_final_epochs} epochs at the best configurations' speed): the "
            f"search goes on until {self.deadline - plan.started:.0f}s, judging configurations no slower than "
            f"{self.slowest_final * 1000:.3f} ms per image"
        )
        return True

    def _next_job(self, study: optuna.Study) -> bool:
        trials = study.get_trials(deepcopy=False)
        self._refresh_speed(trials)
        left = self.deadline - self.clock()
        if left <= 0:
            return False
        dataset, policy = self.prepared.dataset, self.plan.policy
        if policy.arm == "none" and any(t.state == TrialState.COMPLETE for t in trials):
            return False  # the one start is judged: the rest of the budget trains it
        for promotion in promotions(trials, len(self.plan.rungs), self.plan.policy.eta, self.plan.train_images):
            source = study.trials[promotion.source]
            spec = TrialRecord.of(source).spec or spec_for_params(
                self.prepared.space, promotion.params, dataset, self.prepared.config.epochs, self.prepared.objective.traits
            )
            kept = TrialRecord.of(source).fidelity.get("epochs")
            if self.rung_seconds(spec, self.plan.rungs[promotion.rung], kept) <= left:
                attrs: dict[str, Any] = {
                    record.RUNG: promotion.rung,
                    record.CONFIGURATION: promotion.configuration,
                    record.PROMOTED_FROM: promotion.source,
                    record.FIDELITY: {"epochs": kept},
                }
                if promotion.baseline:
                    attrs[record.BASELINE] = promotion.baseline
                if promotion.portfolio:
                    attrs[record.PORTFOLIO] = promotion.portfolio
                study.enqueue_trial(promotion.params, user_attrs=attrs)
                return True
        rung0, typical = self.plan.rungs[0], self.plan.reference_seconds_per_image * self.speed.correction
        epochs = self.plan.epochs_for(rung0, typical * self.plan.policy.speed_margin)
        work = rung0.images * epochs + rung0.validation_images * self.speed.eval_factor
        if self.speed.trace_seconds + work * typical > left:  # not even a typical new configuration fits
            return False
        space, epochs, traits = self.prepared.space, self.prepared.config.epochs, self.prepared.objective.traits
        start = self._next_start(trials) if policy.judges_starts else None
        baseline = None if start or not policy.draws else self._next_baseline(trials)
        if start is not None:
            params = drawn_params(space, space.portfolio[start], dataset, epochs, traits)
            study.enqueue_trial(params, user_attrs={record.RUNG: 0, record.PORTFOLIO: start})
        elif baseline is not None:
            params = drawn_params(space, {**space.baselines[baseline], "epochs": epochs}, dataset, epochs, traits)
            study.enqueue_trial(params, user_attrs={record.RUNG: 0, record.BASELINE: baseline})
        elif not policy.draws:
            return False  # the arm judges no draws (tuner.budget.plan.ARMS)
        return True

    def _next_start(self, trials: list[optuna.trial.FrozenTrial]) -> str | None:
        """The space's next known-good start not judged yet (none from a pretrained start: it fixes the convolutions)."""
        if self.prepared.config.pretrained:
            return None
        judged = {TrialRecord.of(t).portfolio for t in trials if t.state != TrialState.FAIL and TrialRecord.of(t).rung == 0}
        return next((name for name in self.prepared.space.portfolio if name not in judged), None)

    def _next_baseline(self, trials: list[optuna.trial.FrozenTrial]) -> str | None:
        config, space = self.prepared.config, self.prepared.space
        if config.baselines is False or config.pretrained:
            return None
        names = list(space.baselines) if config.baselines is True else list(config.baselines)
        unknown = [n for n in names if n not in space.baselines]
        if unknown:
            raise TunerError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(space.baselines)}")
        judged = {TrialRecord.of(t).baseline for t in trials if t.state != TrialState.FAIL and TrialRecord.of(t).rung == 0}
        return next((name for name in names if name not in judged), None)

    # -- judging a trial at its rung --------------------------------------------------------------

    def _reject(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(record.STOPPED, f"rejected: {reason}")
        raise optuna.TrialPruned(f"rejected: {reason}")

    def __call__(self, trial: optuna.Trial) -> float:
        config, plan = self.prepared.config, self.plan
        rung = plan.rungs[TrialRecord.of(trial).rung]
        trial.set_user_attr(record.RUNG, rung.index)
        if TrialRecord.of(trial).configuration is None:
            trial.set_user_attr(record.CONFIGURATION, trial.number)
        spec = self.prepared.objective.suggest(trial)  # stores the spec; rejects what cannot be built
        final_seconds = plan.final_deadline - plan.search_deadline
        per_image = self.speed.train_seconds_per_image(spec)
        least = plan.policy.min_final_epochs
        if plan.train_images * least * per_image > final_seconds:
            self._reject(
                trial,
                f"too slow for this budget: {least} final epochs on {plan.train_images} images "
                f"would take {plan.train_images * least * per_image:.0f}s, the final phase has "
                f"{final_seconds:.0f}s",
            )
        final_speed = per_image * plan.policy.speed_margin
        if final_speed > self.slowest_final:
            self._reject(
                trial,
                f"too slow for the search's extension: {final_speed * 1000:.3f} ms per image, the final phase "
                f"is planned for {self.slowest_final * 1000:.3f}",
            )
        kept = TrialRecord.of(trial).fidelity.get("epochs")  # a promotion's, from the rung below
        needed = self.rung_seconds(spec, rung, kept)
        if needed > self.deadline - self.clock():
            self._reject(trial, f"no time left in the search for rung {rung.index} ({needed:.0f}s needed)")
        epochs = self.epochs_at(spec, rung, kept)
        trial.set_user_attr(
            record.FIDELITY, {"images": rung.images, "epochs": epochs, "validation_images": rung.validation_images}
        )
        result = self.prepared.objective.judge(
            trial, budget_recipe(spec, epochs), config.seed + trial.number, **rung_harness(rung, epochs, config.folds)
        )
        trial.report(result.mean_val_accuracy, rung.index)  # the dashboard plots a configuration's rung as its step
        trial.set_user_attr(record.PREDICTED, self._predicted(trial, result.mean_val_accuracy, rung))
        return result.mean_val_accuracy

    def _predicted(self, trial: optuna.Trial, value: float, rung: Rung) -> float:
        """The accuracy predicted for the whole training split through the configuration's judgement one rung down."""
        source = trial.user_attrs.get(record.PROMOTED_FROM)
        if source is None:
            return value
        lower = trial.study.trials[int(source)]
        if lower.state != TrialState.COMPLETE or not lower.values:
            return value
        lower_images = int(TrialRecord.of(lower).fidelity.get("images") or 0)
        return extrapolate(value, rung.images, float(lower.values[0]), lower_images, self.plan.train_images)
