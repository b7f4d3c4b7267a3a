"""The run pipeline: one seam for the strategies; a trial-count run never loads the budget's modules."""

import subprocess
import sys

import pytest
from conftest import tuner_env

from tuner.core.study_file import load_study_config
from tuner.run.strategies import choose_strategy
from tuner.search.strategy import Job


@pytest.mark.slow
def test_a_trial_count_run_imports_none_of_the_budget_strategys_modules(digits_export):
    """The shared export study ran in-process through the pipeline; it reported what it had imported."""
    assert digits_export["reads"]["budget_modules"] == []


@pytest.mark.slow  # a fresh process imports a Keras backend (10 CPU seconds)
def test_choosing_a_strategy_imports_only_the_one_chosen():
    code = (
        "import sys, time\n"
        "from tuner.core.study_file import load_study_config\n"
        "from tuner.run.strategies import choose_strategy\n"
        "s = choose_strategy(load_study_config('digits', {'folds': 2}), started=time.time())\n"
        "print('optuna_dashboard' in sys.modules)\n"
        "print(s.name, '|', sorted(m for m in sys.modules if m.startswith(('tuner.budget', 'tuner.count'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=tuner_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    *_, dashboard, chosen = result.stdout.strip().splitlines()
    name, modules = chosen.split(" | ")
    assert name == "trial count" and "tuner.count.strategy" in modules and "tuner.budget" not in modules
    assert dashboard == "False"  # optuna_dashboard is loaded when a note is written, with the results


def test_a_count_in_one_process_runs_its_trials_then_stops_and_a_shared_one_waits_for_running_slots():
    import optuna

    config = load_study_config("digits", {"folds": 2, "trials": 2})
    alone = choose_strategy(config, started=0.0)
    study = optuna.create_study()
    assert [alone.next_job(study) for _ in range(3)] == [Job.RUN, Job.RUN, Job.DONE]
    shared = choose_strategy(config, started=0.0, shared=True)
    shared.join(study, None)  # the quota is settled: 2, the file's trials
    running = study.ask()
    assert shared.next_job(study) is Job.RUN
    other = study.ask()
    assert shared.next_job(study) is Job.WAIT  # both slots run elsewhere
    study.tell(running, 0.5)
    assert shared.next_job(study) is Job.WAIT
    study.tell(other, 0.6)
    assert shared.next_job(study) is Job.DONE
    assert study.user_attrs["trial_quota"] == 2
