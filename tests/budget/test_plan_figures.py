"""The figures a budget's plan prints are the ones its search then uses; the search arms judge what they say.

A 15-minute plan on digits with fixed calibration figures (those of
tests/budget/test_budget_golden.py, with multiply-adds 500 times dearer, so
that the starts' final trainings fit 10 to 40 epochs, not all the cap): no
training, each trial is told a value computed from its number.
"""

import re

import optuna
import pytest
from optuna.trial import TrialState

from tuner.budget.plan import ARMS, DEFAULT_POLICY, PlanPolicy
from tuner.core.errors import TunerError
from tuner.core.record import TrialRecord
from tuner.core.speed import SpeedModel

SPEED = {"per_image": 4e-4, "per_multiply_add": 1e-8, "per_step": 2e-3, "eval_factor": 0.45, "trace_seconds": 0.5}
OWN_ARM = PlanPolicy(single_rung_arm="")  # the plan (a single rung on part of the pool) keeps the arm it is given


def _search(policy: PlanPolicy = OWN_ARM, budget: float = 900, workers: int = 1, **settings):
    from tuner.budget.rung_search import BudgetSearch, plan_for
    from tuner.core.study_file import load_study_config
    from tuner.search.study import prepare

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prepared = prepare(load_study_config("digits", {"budget": budget, **settings}), recipe_fixed=True)
    speed = SpeedModel(**SPEED)
    plan = plan_for(prepared, speed, started=0.0, now=10.0, workers=workers, policy=policy)
    now = [plan.started + 10.0]
    return BudgetSearch(prepared, plan, speed, clock=lambda: now[0]), now


def _run(search, now, trials: int = 40) -> optuna.Study:
    """Ask for trials in the search's order and judge each by the search itself, as tests/budget's golden run does,
    but with the training left out: a judged trial is told a value from its number."""
    from types import SimpleNamespace

    from tuner.search.samplers import make_sampler

    def judge(trial, recipe, seed, **harness):
        return SimpleNamespace(mean_val_accuracy=0.5 + (trial.number % 7) / 20)

    search.prepared.objective.judge = judge
    study = optuna.create_study(direction="maximize", sampler=make_sampler(search.prepared.config))
    for _ in range(trials):
        if not search.next_job(study):
            break
        trial = study.ask()
        try:
            value = search(trial)
        except optuna.TrialPruned as stopped:
            trial.set_user_attr("stopped", str(stopped))
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
        now[0] += 8.0
    return study


def test_the_plan_prints_the_epochs_the_starts_then_train_and_the_speed_above_which_it_rejects():
    search, now = _search()
    plan = search.plan
    lines = plan.describe(search.start_epochs())
    printed = dict(
        (name, int(epochs))
        for name, epochs in re.findall(r"(\S+) (\d+)", next(line for line in lines if "starts' epochs:" in line))
    )
    assert set(printed) == set(search.prepared.space.portfolio)
    low, high = min(printed.values()), max(printed.values())
    assert low < high
    assert f"({low} to {high} for the space's starts)" in lines[2], lines  # the range, not a floored typical
    threshold = float(re.search(r"slower than ([\d.]+) ms per image", lines[1]).group(1)) / 1000
    assert threshold == pytest.approx(plan.slowest_judged, abs=1e-6)
    # a typical configuration is one the run judges: not slower than the threshold
    assert plan.reference_seconds_per_image <= plan.slowest_judged

    study = _run(search, now)
    judged, rejected_slow = {}, 0
    for trial in study.trials:
        stored = TrialRecord.of(trial)
        if stored.portfolio and stored.rung == 0 and "epochs" in stored.fidelity:  # judged, not rejected
            judged[stored.portfolio] = stored.fidelity["epochs"]
        if stored.spec is not None:  # the printed threshold is the rule the run rejects by
            too_slow = search.speed.train_seconds_per_image(stored.spec) > threshold * (1 + 1e-6)
            assert too_slow == ("too slow for this budget" in trial.user_attrs.get("stopped", "")), trial.user_attrs
            rejected_slow += too_slow
    assert judged == printed  # what the run's rung search computed for the starts it judged
    assert rejected_slow  # some draws were slower than the threshold, and the search rejected them by it


@pytest.mark.parametrize("arm", list(ARMS))
def test_each_arm_judges_the_configurations_it_names(arm):
    search, now = _search(PlanPolicy(arm=arm, single_rung_arm=""))
    study = _run(search, now)
    records = [TrialRecord.of(t) for t in study.trials]
    starts = {r.portfolio for r in records if r.portfolio}
    others = [r for r in records if not r.portfolio]
    portfolio = set(search.prepared.space.portfolio)
    if arm == "portfolio+search":
        assert starts == portfolio and any(r.baseline for r in others) and any(not r.baseline for r in others)
    elif arm == "portfolio":
        assert starts == portfolio and not others
        assert len(study.trials) < 40  # the search ends once the starts and their promotions are judged
    elif arm == "search":
        assert not starts and any(r.baseline for r in others) and any(not r.baseline for r in others)
    else:  # none: the first start, once, at rung 0
        assert [(r.portfolio, r.rung) for r in records] == [(next(iter(search.prepared.space.portfolio)), 0)]


def test_a_single_rung_plan_in_one_process_trains_one_start_for_the_rest_of_the_budget():
    search, now = _search(DEFAULT_POLICY)
    assert len(search.plan.rungs) == 1 and search.plan.rungs[0].images < search.plan.pool_images
    assert search.plan.policy.arm == "none"
    assert "judges " + ARMS["none"] in search.plan.describe()[1]  # the plan says what it then does
    first_start = next(iter(search.prepared.space.portfolio))
    assert [(TrialRecord.of(t).portfolio, TrialRecord.of(t).rung) for t in _run(search, now).trials] == [(first_start, 0)]
    # not with several workers (rung 0 judged side by side), nor for another arm, nor when turned off
    assert _search(DEFAULT_POLICY, workers=2)[0].plan.policy.arm == "portfolio+search"
    assert _search(PlanPolicy(arm="search"))[0].plan.policy.arm == "search"
    assert _search(OWN_ARM)[0].plan.policy.arm == "portfolio+search"
    # nor when the first start's final training reaches the epoch cap anyway: more time would not train it longer
    capped, _ = _search(DEFAULT_POLICY, budget=3600)
    assert len(capped.plan.rungs) == 1 and capped.plan.rungs[0].images < capped.plan.pool_images
    assert next(iter(capped.start_epochs().values())) == DEFAULT_POLICY.max_final_epochs
    assert capped.plan.policy.arm == "portfolio+search"
    # nor when the one rung judges on the whole pool: it is then no cheap fidelity
    whole, _ = _search(DEFAULT_POLICY, subset=400)
    assert len(whole.plan.rungs) == 1 and whole.plan.rungs[0].images == whole.plan.pool_images
    assert whole.plan.policy.arm == "portfolio+search"


def test_an_unknown_arm_is_refused_in_one_line_naming_the_choices():
    with pytest.raises(TunerError, match=r"unknown search arm 'best'; choose one of portfolio\+search, portfolio"):
        PlanPolicy(arm="best")
    with pytest.raises(TunerError, match=r"unknown search arm 'one'"):
        PlanPolicy(single_rung_arm="one")
