"""benchmarks/portfolio.py: the greedy choice across data sets, worked by hand, and a real evaluation of a few candidates.

The evaluation trains for real on digits' training split (fold 0's hold-out scores it); `build`
writes to a temporary path, never to the committed search_spaces/cnn_portfolio.json.
"""

import json

import pytest
from conftest import fills_a_wall_clock

from benchmarks import portfolio
from search_spaces import cnn

# Hold-out accuracies of 4 candidates on 3 data sets. The all-rounder is best on average and its near copy
# second; each specialist leads on one data set and is last on the others (specialist-2 cannot be built on c).
MATRIX = {
    "all-rounder": {"a": 0.90, "b": 0.90, "c": 0.90},
    "near-copy": {"a": 0.89, "b": 0.89, "c": 0.89},
    "specialist-1": {"a": 0.95, "b": 0.70, "c": 0.70},
    "specialist-2": {"a": 0.70, "b": 0.93, "c": None},
}


def test_greedy_construction_takes_the_best_on_average_then_the_specialists_never_the_near_copy():
    scores = portfolio.normalised(MATRIX)
    # per data set (accuracy - worst) / (best - worst): a 0.70-0.95, b 0.70-0.93, c 0.70-0.90; unbuildable is worst
    assert scores["all-rounder"] == pytest.approx({"a": 0.8, "b": 0.2 / 0.23, "c": 1.0})
    assert scores["specialist-2"] == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.0})
    chosen = portfolio.greedy_portfolio(scores, size=4)
    # 1st: the all-rounder, mean (0.8 + 0.870 + 1) / 3; 2nd: specialist-1 lifts a to 1 (+0.067), more than
    # specialist-2 lifts b (+0.043) or the near copy anything (0); 3rd: specialist-2 lifts b to 1; then nothing adds
    assert [name for name, _ in chosen] == ["all-rounder", "specialist-1", "specialist-2"]
    assert [score for _, score in chosen] == pytest.approx([(1.8 + 0.2 / 0.23) / 3, (2 + 0.2 / 0.23) / 3, 1.0])
    assert [name for name, _ in portfolio.greedy_portfolio(scores, size=2)] == ["all-rounder", "specialist-1"]


def _matrix_file(path, accuracies):
    names = list(accuracies)
    matrix = {
        "space": "cnn",
        "fingerprint": portfolio.space_fingerprint(cnn.SPACE),
        "budget": 300.0,
        "seed": 0,
        "datasets": ["a", "b", "c"],
        "candidates": [{"name": n, "kind": "draw", "params": dict(cnn.BASELINES["seed000-v1"], n=n)} for n in names],
        "next_draw": 4,
        "results": {n: {d: {"holdout_accuracy": a} for d, a in cells.items()} for n, cells in accuracies.items()},
        "runs": [],
    }
    path.write_text(json.dumps(matrix))
    return path


def test_build_writes_the_chosen_starts_with_their_figures_and_the_spaces_fingerprint(tmp_path):
    matrix = _matrix_file(tmp_path / "matrix.json", MATRIX)
    out = tmp_path / "portfolio.json"
    assert portfolio.main(["build", "--matrix", str(matrix), "--size", "5", "--out", str(out)]) == 0
    built = json.loads(out.read_text())
    assert [s["name"] for s in built["starts"]] == ["start-all-rounder", "start-specialist-1", "start-specialist-2"]
    assert built["starts"][1]["params"]["n"] == "specialist-1" and built["starts"][1]["holdout_accuracy"]["a"] == 0.95
    assert built["fingerprint"] == portfolio.space_fingerprint(cnn.SPACE) and built["datasets"] == ["a", "b", "c"]
    assert built["matrix"] == str(matrix) and built["command"].startswith("python benchmarks/portfolio.py build")


@pytest.mark.slow
@fills_a_wall_clock
def test_evaluate_trains_each_candidate_on_the_training_split_resumes_and_builds(tmp_path):
    matrix_path, out = tmp_path / "matrix.json", tmp_path / "portfolio.json"
    args = ["evaluate", "--datasets", "digits", "--candidates", "1", "--limit", "2", "--budget", "60s"]
    assert portfolio.main([*args, "--out", str(matrix_path)]) == 0
    matrix = json.loads(matrix_path.read_text())
    names = [c["name"] for c in matrix["candidates"]]
    assert names == [*list(cnn.PORTFOLIO)[:2], "draw-0"]  # two portfolio starts, then the first draw that fits
    for name in names:
        cell = matrix["results"][name]["digits"]
        assert cell["holdout_accuracy"] > 0.2, (name, cell)  # twice chance (0.1): the epochs follow the measured speed
        assert cell["train_images"] + cell["validation_images"] == 1437  # digits' training split; its test stays sealed
    assert matrix["fingerprint"] == portfolio.space_fingerprint(cnn.SPACE) and matrix["runs"][0]["machine"]["cores"]
    assert portfolio.main([*args, "--out", str(matrix_path)]) == 0  # resumed: nothing left to train
    again = json.loads(matrix_path.read_text())
    assert again["results"] == matrix["results"] and len(again["runs"]) == 2
    assert portfolio.main(["build", "--matrix", str(matrix_path), "--size", "2", "--out", str(out)]) == 0
    built = json.loads(out.read_text())
    assert 1 <= len(built["starts"]) <= 2 and built["datasets"] == ["digits"]
    best = max(names, key=lambda name: matrix["results"][name]["digits"]["holdout_accuracy"])
    assert built["starts"][0]["candidate"] == best and built["starts"][0]["name"].startswith("start-")
