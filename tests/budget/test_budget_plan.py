"""Planning a wall-clock budget: deadlines, fidelity rungs, ASHA promotions, the speed model (no training here)."""

import itertools
import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from tuner.budget.plan import DEFAULT_POLICY, MATCHED, PlanPolicy, export_reserve, make_plan
from tuner.budget.rungs import extrapolate, predicted_accuracy, promotions
from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec
from tuner.core.speed import SpeedModel
from tuner.training.calibration import Probe, fit_speed_model, probe_specs

ETA, MIN_FINAL_EPOCHS = DEFAULT_POLICY.eta, DEFAULT_POLICY.min_final_epochs
final_epochs, matched_epochs = DEFAULT_POLICY.final_epochs, DEFAULT_POLICY.matched_epochs


def _plan(budget, train_images=60000, spi=0.6e-3, trace=0.8, workers=1, now=20.0):
    return make_plan(
        budget=budget,
        started=0.0,
        now=now,
        train_images=train_images,
        validation_images=train_images // 5,
        num_classes=10,
        seconds_per_image=spi,
        eval_factor=0.45,
        trace_seconds=trace,
        workers=workers,
    )


@pytest.mark.parametrize("budget", [90, 900, 3600, 8 * 3600])
def test_deadlines_keep_search_final_training_and_export_inside_the_budget(budget):
    plan = _plan(budget)
    assert 20 < plan.search_deadline < plan.final_deadline < budget
    assert plan.final_deadline == pytest.approx(budget - export_reserve(budget))
    assert plan.to_dict() == type(plan).from_dict(plan.to_dict()).to_dict()  # workers read it back from the study


def test_more_budget_buys_more_rungs_and_the_top_rung_nears_the_final_recipe():
    counts = [len(_plan(budget).rungs) for budget in (900, 3600, 8 * 3600)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    long = _plan(8 * 3600)
    assert long.top.images > 0.8 * long.pool_images  # nearly every search image, for the epochs of the final training
    assert long.top.validation_images == 12000  # the whole hold-out


@pytest.mark.parametrize("budget", [900, 3600, 8 * 3600])
def test_each_rung_costs_about_eta_times_the_one_below_and_judges_on_more(budget):
    plan = _plan(budget)
    assert all(rung.epochs == MATCHED for rung in plan.rungs)  # each rung is a miniature of the final training
    for lower, upper in zip(plan.rungs, plan.rungs[1:]):
        assert upper.images > lower.images and upper.validation_images >= lower.validation_images
    for lower, upper in itertools.pairwise([rung.images for rung in plan.rungs]):  # the top rung may be capped by the pool
        assert 1.5 < upper / lower < ETA * 1.6
    assert all(rung.images <= plan.pool_images and rung.validation_images <= 12000 for rung in plan.rungs)
    assert plan.rungs[0].images >= 300  # at least 30 images of each of the 10 classes
    assert all(rung.validation_images >= min(2000, 12000) for rung in plan.rungs)


def test_a_rung_trains_each_configuration_for_the_epochs_its_final_training_gets():
    """A 3x slower configuration gets about a third of the epochs, so both cost a rung about the same time."""
    plan = _plan(3600)
    final_seconds = plan.final_deadline - plan.search_deadline
    assert plan.matched_seconds == pytest.approx(final_seconds)
    fast, slow = plan.epochs_for(plan.top, 1e-3), plan.epochs_for(plan.top, 3e-3)
    assert fast == matched_epochs(final_seconds, 60000, 1e-3) == final_epochs(final_seconds, 60000, 1e-3)
    assert 2.5 < fast / slow < 3.5
    assert fast * 1e-3 == pytest.approx(slow * 3e-3, rel=0.15)
    assert plan.epochs_for(plan.top, 1e-5) == 40  # a very fast one stops at the final training's cap
    assert plan.epochs_for(plan.top, 1.0) == MIN_FINAL_EPOCHS  # never below the final training's minimum
    old = {"index": 0, "images": 900, "epochs": 2, "validation_images": 1000}
    stored = type(plan).from_dict({**plan.to_dict(), "rungs": [old]})
    assert stored.epochs_for(stored.top, 0.2e-3) == 2  # a plan stored with fixed epochs keeps them


def test_tiny_data_searches_at_one_rung_on_all_of_it():
    plan = _plan(90, train_images=1437, spi=6e-5, trace=1.0)
    assert len(plan.rungs) == 1 and plan.rungs[0].images == plan.pool_images


def test_a_steep_curve_from_two_cheap_rungs_is_extrapolated_at_the_capped_exponent():
    """Two small rungs can show a curve steeper than more data keeps (H: 0.71 -> 0.86 predicted 0.96 at a = 0.5).

    Worked by hand: error = c * images^-a through two rungs 5000/1600 = 3.125x apart, then 60000/5000 = 12x more.
    """
    # error 0.30 -> 0.14: a = ln(0.30/0.14) / ln(3.125) = 0.669, capped at 0.35 (the steepest Hestness et al. 2017
    # measured): 1 - 0.14 / 12^0.35 = 1 - 0.14 / 2.3862 = 0.9413; uncapped it would be 1 - 0.14 / 12^0.669 = 0.9734
    steep = extrapolate(0.86, 5000, 0.70, 1600, 60000)
    assert steep == pytest.approx(0.9413, abs=1e-4)
    # error 0.16 -> 0.11: a = ln(0.16/0.11) / ln(3.125) = 0.329, under the cap: 1 - 0.11 / 12^0.329 = 0.9514
    flat = extrapolate(0.89, 5000, 0.84, 1600, 60000)
    assert flat == pytest.approx(0.9514, abs=1e-4)
    assert flat > steep  # the flatter curve at the higher value is no longer overtaken
    assert extrapolate(0.80, 5000, 0.85, 1600, 60000) == pytest.approx(0.80)  # a falling curve predicts no gain
    assert extrapolate(0.86, 5000, 0.86, 1600, 60000) == pytest.approx(0.86)  # a flat one: a = 0, no gain either


def test_a_plan_made_with_another_policy_keeps_it_and_a_stored_plan_without_one_gets_the_default():
    """The constants are a value passed in and stored with the plan (workers follow it), never a patched module."""
    wider = make_plan(
        budget=3600,
        started=0.0,
        now=20.0,
        train_images=60000,
        validation_images=12000,
        num_classes=10,
        seconds_per_image=0.6e-3,
        eval_factor=0.45,
        trace_seconds=0.8,
        policy=PlanPolicy(search_share=0.3, max_rungs=2),
    )
    default = _plan(3600)
    assert len(wider.rungs) <= 2 < len(default.rungs)
    assert wider.search_deadline - 20 == pytest.approx(0.3 / 0.55 * (default.search_deadline - 20))
    stored = wider.to_dict()
    assert type(wider).from_dict(stored) == wider  # the policy travels with the plan
    stored.pop("policy")
    assert type(wider).from_dict(stored).policy == DEFAULT_POLICY  # plans stored before policies existed


def test_final_epochs_fit_the_time_and_stop_at_the_cap():
    assert final_epochs(100.0, 1000, 0.01) == 10
    assert final_epochs(1e9, 1000, 0.01) == 40
    assert final_epochs(5.0, 1000, 0.01) == 0


def _rung_trial(number, value, rung, config=None, state=TrialState.COMPLETE, baseline=None, images=None):
    attrs = {"rung": rung, "config": number if config is None else config}
    if images:
        attrs["fidelity"] = {"images": images, "epochs": 10, "validation_images": 2000}
    if baseline:
        attrs["baseline"] = baseline
    trial = create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params={"x": float(number)},
        distributions={"x": optuna.distributions.FloatDistribution(0, 100)},
        user_attrs=attrs,
    )
    trial.number = number
    return trial


def test_the_best_third_of_a_rung_is_promoted_once_highest_rung_first():
    rung0 = [_rung_trial(n, 0.5 + n / 100, 0) for n in range(9)]
    due = promotions(rung0, rungs=3)
    assert [(p.configuration, p.rung) for p in due] == [(8, 1), (7, 1), (6, 1)]  # 9 judged: the best 3
    started = [*rung0, _rung_trial(9, None, 1, config=8, state=TrialState.RUNNING)]
    assert [p.configuration for p in promotions(started, rungs=3)] == [7, 6]  # a running promotion counts as taken
    failed = [*rung0, _rung_trial(9, None, 1, config=8, state=TrialState.FAIL)]
    assert [p.configuration for p in promotions(failed, rungs=3)] == [8, 7, 6]  # a failed one is promoted again
    upper = [*rung0, *(_rung_trial(9 + i, 0.9 - i / 100, 1, config=c) for i, c in enumerate((8, 7, 6)))]
    assert next((p.configuration, p.rung) for p in promotions(upper, rungs=3)) == (8, 2)  # the top rung first
    assert promotions(rung0[:2], rungs=3) == []  # too few judged to promote any
    start = _rung_trial(9, 0.1, 0)
    start.user_attrs["portfolio"] = "start-vgg-32-64"
    assert [p.configuration for p in promotions([*rung0[:2], start], rungs=3)] == [
        9,
        1,
    ]  # a portfolio start: rung 1 whatever
    assert promotions(rung0, rungs=1) == []  # nothing above the only rung


def test_a_configuration_that_gains_more_from_more_data_is_promoted_and_predicted_ahead():
    """Seed 000's v1 led rung 0 of an hour's run; a batch-norm stack gained twice as much from 3x the images."""
    trials = [
        _rung_trial(0, 0.783, 0, images=861),  # the stack: 0.783 -> 0.863
        _rung_trial(1, 0.8265, 0, images=861),  # v1: 0.8265 -> 0.8646
        _rung_trial(2, 0.837, 0, images=861),  # v3: 0.837 -> 0.865
        *(_rung_trial(3 + n, 0.70 + n / 100, 0, images=861) for n in range(6)),
        _rung_trial(9, 0.8631, 1, config=0, images=2666),
        _rung_trial(10, 0.8646, 1, config=1, images=2666),
        _rung_trial(11, 0.865, 1, config=2, images=2666),
    ]
    predicted = predicted_accuracy(trials, 60000)
    assert predicted[2] == 0.837  # one point: its value
    assert predicted[9] > predicted[11] > 0.865 and predicted[9] > predicted[10]  # the steepest curve leads
    v3_exponent = math.log((1 - 0.837) / (1 - 0.865)) / math.log(2666 / 861)
    assert 1 - predicted[11] == pytest.approx((1 - 0.865) * (60000 / 2666) ** -v3_exponent)
    assert [p.configuration for p in promotions(trials, rungs=3, full_images=60000)] == [0]  # by the prediction
    assert [p.configuration for p in promotions(trials, rungs=3)] == [2]  # by the value alone it would have been v3
    flat = [_rung_trial(0, 0.80, 0, images=800), _rung_trial(1, 0.79, 1, config=0, images=2400)]
    assert predicted_accuracy(flat, 60000)[1] == 0.79  # worse with more data: no gain assumed, none lost


def test_the_speed_model_recovers_its_terms_and_learns_the_days_speed():
    truth = SpeedModel(per_image=2e-5, per_multiply_add=5e-11, per_step=1e-3, eval_factor=0.4, trace_seconds=1.0)
    probes = [
        Probe(name, spec, truth.train_seconds_per_image(spec), 0.4 * truth.train_seconds_per_image(spec), 1.0)
        for name, spec in probe_specs((28, 28, 1), 10).items()
    ]
    fitted = fit_speed_model(probes)
    for field in ("per_image", "per_multiply_add", "per_step", "eval_factor", "trace_seconds"):
        assert getattr(fitted, field) == pytest.approx(getattr(truth, field), rel=1e-6)
    spec = TrialSpec(ModelSpec((28, 28, 1), 10, (ConvBlock(16, 5),), dense_units=(64,)), TrainSpec(batch_size=64))
    predicted = fitted.train_seconds_per_image(spec)
    slower = fitted.corrected([predicted, predicted, predicted], [2 * predicted, 2.2 * predicted, 1.8 * predicted])
    assert slower.train_seconds_per_image(spec) == pytest.approx(2 * predicted)
    assert slower.fit_seconds(spec, 1000, 3, 500) == pytest.approx(1.0 + 2 * predicted * (3000 + 0.4 * 500))


def _digits_search(
    clock, plan_budget=600, baselines=("seed000-v1", "seed000-v2"), per_multiply_add=1e-11, announce=lambda line: None
):
    from tuner.budget.rung_search import BudgetSearch
    from tuner.core.study_file import load_study_config
    from tuner.search.study import prepare

    config = load_study_config("digits", {"budget": plan_budget, "baselines": list(baselines), "folds": 5})
    prepared = prepare(config, recipe_fixed=True)
    plan = make_plan(
        budget=plan_budget,
        started=0.0,
        now=0.0,
        train_images=1437,
        validation_images=287,
        num_classes=10,
        seconds_per_image=1e-4,
        eval_factor=0.5,
        trace_seconds=1.0,
    )
    speed = SpeedModel(per_image=5e-5, per_multiply_add=per_multiply_add, per_step=1e-3, eval_factor=0.5, trace_seconds=1.0)
    return BudgetSearch(prepared, plan, speed, clock=clock, announce=announce), plan


def test_the_next_job_is_a_baseline_then_a_sampled_configuration_and_nothing_after_the_deadline():
    now = [0.0]
    search, plan = _digits_search(lambda: now[0])
    study = optuna.create_study(direction="maximize")
    for name in search.prepared.space.portfolio:  # the space's known-good starts first, then the seed models
        assert search.next_job(study)
        start = study.ask()
        assert start.user_attrs == {"rung": 0, "portfolio": name}
        study.tell(start, 0.9)
    assert search.next_job(study)
    first = study.ask()
    assert first.user_attrs == {"rung": 0, "baseline": "seed000-v1"}  # the seed models compete at rung 0 like any draw
    study.tell(first, 0.9)
    assert search.next_job(study) and study.ask().user_attrs["baseline"] == "seed000-v2"
    assert search.next_job(study)
    sampled = study.ask()
    assert sampled.user_attrs == {} and sampled.number == len(search.prepared.space.portfolio) + 2  # left to the sampler
    now[0] = plan.search_deadline - 0.5  # less than any rung takes
    assert not search.next_job(study)


def _judge_starts(search, study):
    """Each portfolio start judged at rung 0 as fast as the speed model predicts, without training."""
    from tuner.search.objective import spec_for_params

    space, prepared = search.prepared.space, search.prepared
    for value, (name, params) in zip(itertools.count(0.9, -0.01), space.portfolio.items()):
        spec = spec_for_params(space, params, prepared.dataset, prepared.config.epochs, prepared.objective.traits)
        attrs = {"rung": 0, "portfolio": name, "spec": spec.to_dict()}
        attrs["train_seconds_per_image"] = search.speed.train_seconds_per_image(spec)
        study.add_trial(create_trial(value=value, user_attrs=attrs))


def test_at_its_deadline_the_search_goes_on_into_the_time_the_final_phase_cannot_use():
    now, lines = [0.0], []
    search, plan = _digits_search(lambda: now[0], announce=lines.append)
    study = optuna.create_study(direction="maximize")
    _judge_starts(search, study)
    seconds, slowest = search.final_seconds_needed(study)
    # five models of 40 epochs on 1,437 digits at the starts' speed take a fraction of the final phase
    assert seconds < (plan.final_deadline - plan.search_deadline) / 2
    now[0] = plan.search_deadline
    assert search.next_job(study)  # the plan's search is over; the time the final phase cannot use is not
    assert search.deadline == pytest.approx(plan.final_deadline - seconds)
    (line,) = lines
    assert f"needs at most {seconds:.0f}s" in line and f"goes on until {search.deadline:.0f}s" in line
    study.ask()  # the job it found: a start's promotion
    slow = {**search.prepared.space.baselines["seed000-overfit"], "epochs": 10}  # 25 M multiply-adds, 10x the largest start
    study.enqueue_trial(slow, user_attrs={"rung": 0})
    with pytest.raises(optuna.TrialPruned, match="too slow for the search's extension"):
        search(study.ask())  # its final training could take the time the best five need
    now[0] = search.deadline
    assert not search.next_job(study) and len(lines) == 1  # then it ends, once


def test_a_final_phase_that_needs_its_time_keeps_it():
    now, lines = [0.0], []
    search, plan = _digits_search(lambda: now[0], per_multiply_add=1e-9, announce=lines.append)
    study = optuna.create_study(direction="maximize")
    _judge_starts(search, study)
    assert search.final_seconds_needed(study)[0] > plan.final_deadline - plan.search_deadline
    now[0] = plan.search_deadline
    assert not search.next_job(study) and search.deadline == plan.search_deadline and lines == []


def test_a_configuration_too_slow_for_the_final_phase_is_rejected_before_training():
    search, _ = _digits_search(lambda: 0.0, plan_budget=60, per_multiply_add=1e-9)  # 25 M multiply-adds: 25 ms an image
    study = optuna.create_study(direction="maximize")
    huge = {**search.prepared.space.baselines["seed000-overfit"], "epochs": 10}
    study.enqueue_trial(huge, user_attrs={"rung": 0})
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="too slow for this budget"):
        search(trial)
    assert trial.user_attrs["stopped"].startswith("rejected: too slow for this budget: 3 final epochs on 1437 images")


def test_a_trial_at_its_last_step_completes_whatever_the_pruner_says():
    """Issue 13 item 2: all training paid for must count. The reporter never asks the pruner at the last step."""
    from tuner.core.study_file import load_study_config
    from tuner.search.study import prepare

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    config = load_study_config("digits", {"folds": 2, "epochs": 2})
    objective = prepare(config).objective
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    trial = study.ask()
    report = objective._reporter(trial)
    report(3, 0.8)  # fold 2, epoch 2: the last of 2 x 2 steps
    with pytest.raises(optuna.TrialPruned, match="pruned at fold 2, epoch 1"):
        report(2, 0.7)


def test_under_a_budget_the_space_draws_neither_epochs_nor_a_schedule():
    """The plan sets both (cosine to zero over each rung's and the final training's epochs): drawing them is noise."""
    import search_spaces
    from tuner.core.traits import DataTraits

    for name in ("cnn", "cnn_cpu"):
        space = search_spaces.get_space(name)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        trial = study.ask()
        spec = space.suggest(trial, (28, 28, 1), 10, 8, DataTraits(recipe_fixed=True))
        assert not {"epochs", "lr_schedule"} & set(trial.params), name
        assert spec.train.lr_schedule == "cosine" and spec.train.epochs == 8
        free = study.ask()
        space.suggest(free, (28, 28, 1), 10, 8)
        assert "lr_schedule" in free.params, name


def test_an_ensemble_member_trains_at_least_half_the_winners_epochs_and_never_under_the_final_minimum():
    assert DEFAULT_POLICY.least_member_epochs(40) == 20
    assert DEFAULT_POLICY.least_member_epochs(11) == 6  # rounded up
    assert DEFAULT_POLICY.least_member_epochs(2) == MIN_FINAL_EPOCHS
    assert PlanPolicy(min_member_epoch_share=0.0).least_member_epochs(40) == MIN_FINAL_EPOCHS
