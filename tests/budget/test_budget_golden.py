"""A budget run's plan and trial order for fixed calibration figures stay what they were when pinned.

The snapshot (tests/fixtures/budget-golden.json) was written by the code
before the search-strategy redesign (`PYTHONPATH=tests python tests/budget/test_budget_golden.py`
rewrites it); the same calibration figures must plan the same rungs and ask
for the same configurations in the same order. Each trial is told a value
computed from its parameters, so nothing trains.
"""

import hashlib
import json

import optuna
from conftest import FIXTURES

SNAPSHOT = FIXTURES / "budget-golden.json"
SPEED = {"per_image": 4e-4, "per_multiply_add": 2e-11, "per_step": 2e-3, "eval_factor": 0.45, "trace_seconds": 0.5}


def _value(params: dict) -> float:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).digest()
    return 0.5 + 0.45 * int.from_bytes(digest[:4], "big") / 2**32


def golden_run(trials: int = 45) -> dict:
    """Plan a 15-minute budget on digits with fixed speed figures, then ask for `trials` trials in order."""
    from tuner.budget.rung_search import BudgetSearch, plan_for
    from tuner.core import record
    from tuner.core.speed import SpeedModel
    from tuner.core.study_file import load_study_config
    from tuner.search.samplers import make_sampler
    from tuner.search.study import prepare

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_study_config("digits", {"budget": 900})
    prepared = prepare(config, recipe_fixed=True)  # a budget sets the epochs and the schedule
    speed = SpeedModel(**SPEED)
    plan = plan_for(prepared, speed, started=0.0, now=10.0)
    now = [plan.started + 10.0]
    search = BudgetSearch(prepared, plan, speed, clock=lambda: now[0])
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config))
    order = []
    for _ in range(trials):
        if not search.next_job(study):
            break
        trial = study.ask()
        attrs = dict(trial.user_attrs)
        rung = plan.rungs[int(attrs.get(record.RUNG, 0))]
        trial.set_user_attr(record.RUNG, rung.index)
        if attrs.get(record.CONFIGURATION) is None:
            trial.set_user_attr(record.CONFIGURATION, trial.number)
        trial.set_user_attr(record.FIDELITY, {"images": rung.images, "validation_images": rung.validation_images})
        try:
            prepared.objective.suggest(trial)  # draws the rest of the parameters and stores the spec, as judging does
            state = "COMPLETE"
        except optuna.TrialPruned:
            state = "PRUNED"
        params = {k: (round(v, 10) if isinstance(v, float) else v) for k, v in trial.params.items()}
        if state == "COMPLETE":
            study.tell(trial, _value(params) + 0.01 * rung.index)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        order.append(
            {
                "rung": rung.index,
                "name": attrs.get(record.PORTFOLIO) or attrs.get(record.BASELINE),
                "promoted_from": attrs.get(record.PROMOTED_FROM),
                "params": params,
                "state": state,
            }
        )
        now[0] += 8.0
    plan_dict = {k: v for k, v in plan.to_dict().items() if k not in ("started", "policy")}  # (pinned before policies)
    return json.loads(json.dumps({"plan": plan_dict, "order": order}))


def test_the_same_calibration_plans_the_same_rungs_and_runs_the_same_trial_order():
    expected = json.loads(SNAPSHOT.read_text())
    got = golden_run()
    assert got["plan"] == expected["plan"]
    assert len(got["order"]) == len(expected["order"]) > 20
    for position, (one, other) in enumerate(zip(got["order"], expected["order"], strict=True)):
        assert one == other, position


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(golden_run(), indent=1, sort_keys=True) + "\n")
