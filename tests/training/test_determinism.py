"""--deterministic: two runs of the same small study, in separate folders and processes, give identical values.

Each run also exports its best trial: the model card records the switch, and
the exported model tests the same in both runs.
"""

import json

import optuna
import pytest
from conftest import run_tuner
from optuna.trial import TrialState

# two seed models: the default list's second, seed000-overfit, took three quarters of the test's time
BASELINES = ["--baselines", "seed000-v1,seed000-v2"]
RUN = [
    "digits",
    "--trials",
    "2",
    "--folds",
    "2",
    "--epochs",
    "2",
    *BASELINES,
    "--deterministic",
    "--storage",
    "sqlite:///a.db",
]


def _run(folder):
    folder.mkdir()
    result = run_tuner(*RUN, "--export-top", "1", "--no-progress", cwd=folder)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="digits", storage=f"sqlite:///{folder / 'a.db'}").trials
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2
    card = json.loads(next((folder / "exports" / "digits").glob("trial-*.card.json")).read_text())
    return finished, card


@pytest.mark.slow
def test_two_deterministic_runs_give_identical_values_and_models(tmp_path):
    first, first_card = _run(tmp_path / "first")
    second, second_card = _run(tmp_path / "second")
    assert [t.params for t in first] == [t.params for t in second]
    assert [t.values for t in first] == [t.values for t in second]  # exactly: not approximately
    for one, other in zip(first, second, strict=True):
        assert one.user_attrs["deterministic"] is other.user_attrs["deterministic"] is True
        assert one.number == other.number and one.user_attrs["fold_val_accuracy"] == other.user_attrs["fold_val_accuracy"]
    assert max(t.value for t in first) > 0.5  # they learned (chance: 0.1), identically
    assert first_card["deterministic"] is True and second_card["deterministic"] is True
    assert first_card["trial"]["number"] == second_card["trial"]["number"]
    assert first_card["test"]["accuracy"] == second_card["test"]["accuracy"] > 0.5
    assert first_card["test"]["loss"] == second_card["test"]["loss"]
