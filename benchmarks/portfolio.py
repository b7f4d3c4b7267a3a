"""The cnn space's portfolio of known-good starts, built from the suite: `python benchmarks/portfolio.py PART [options]`.

A `--budget` run judges the space's portfolio starts first (search_spaces/cnn.py reads them from
search_spaces/cnn_portfolio.json). This script builds that file from measurements instead of by hand,
as zero-shot AutoML systems build theirs: evaluate many configurations on several data sets, then pick
greedily the few that together do best on every data set.

Parts:

- `evaluate --datasets SET [SET ...] --candidates N --budget 5m [--suite-dir DIR] --out FILE`: the
  candidates are the space's current portfolio starts, its seed baselines and N draws of the space
  (Optuna's RandomSampler with `--seed`, kept only when buildable and fast enough for the budget's
  final phase on every data set, as `budget.py rank` keeps them). Each is trained on each data set at
  full fidelity with the final recipe the `--budget` plan gives it (`budget.py starts`: fold 0's
  training part of the training split, the final phase's epochs, cosine to zero) and scored on fold
  0's hold-out. The test split is never read. FILE is a JSON matrix (candidates x data sets, with
  each candidate's parameters, the machine, the command and the space's fingerprint), written after
  every training; a cell already in FILE is kept, so the same command resumes.
- `build --matrix FILE --size K [--out PATH]`: greedy portfolio construction across data sets. Each
  data set's accuracies are normalised to (accuracy - worst) / (best - worst) over the candidates,
  so that every data set weighs the same; starting empty, the candidate that most raises the mean
  over data sets of the portfolio's best normalised accuracy is added, until K are chosen or none
  adds anything. Writes search_spaces/cnn_portfolio.json (or PATH).
- `build --keep-current`: writes the portfolio the space has now, still hand-picked, stamped with
  the space's current fingerprint (how the first file was written; refused once a matrix built it).

The file carries a fingerprint of the space (the parameter names and distributions that seeded draws
meet), so a change to the space that the portfolio was not rebuilt for fails a test.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PORTFOLIO_FILE = REPO / "search_spaces" / "cnn_portfolio.json"
SPACE = "cnn"
FINGERPRINT_DRAWS = 200
REBUILD = (
    "python benchmarks/portfolio.py evaluate --suite-dir DIR --candidates 40 --budget 5m "
    "--out benchmarks/results/portfolio-matrix.json, then python benchmarks/portfolio.py build "
    "--matrix benchmarks/results/portfolio-matrix.json --size 5"
)
HAND_PICKED = (
    "hand-picked before the script existed, not yet chosen from an evaluation across the suite (that needs hours "
    "of quiet machine time): batch-norm VGG-style stacks of 3x3 convolutions, the family that leads "
    "Fashion-MNIST-sized benchmarks, at three widths, and one convolution per block at batch 64 for the shortest "
    "budgets (on the training split's hold-out, at a 15-minute plan's final recipe, it led seed000-v5 and the 16-32 "
    f"stack by about a point; BENCHMARKS.md, 'A start fast enough for 15 minutes'). Rebuild with {REBUILD}"
)


def _traits_for_draws():
    """The traits candidates are drawn under: every augmentation that suits every suite set, class weights, a budget.

    One candidate is trained on every data set, so its parameters must be valid on each: no vertical flips
    (Fashion-MNIST allows horizontal ones only); where a data set does not draw a parameter (no flips on
    digits), its value is ignored there, as a portfolio start's is. The epochs and schedule are the plan's.
    """
    from tuner.core.traits import DataTraits

    return DataTraits(augmentations=("horizontal", "rotation", "translation", "zoom"), class_weights=True, recipe_fixed=True)


def space_fingerprint(space) -> str:
    """A short hash of the parameter names and distributions that seeded draws of `space` meet.

    200 draws (RandomSampler, seed 0) without traits, and 200 with every trait open that a portfolio
    start can meet (image sizes, all augmentations, class weights, a budget's fixed recipe): a parameter
    added, removed, renamed or given another range or choices changes it; a refactor that draws the
    same parameters does not.
    """
    import optuna
    from optuna.distributions import distribution_to_json

    from tuner.core.spec import AUGMENTATION_KINDS
    from tuner.core.traits import DataTraits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = DataTraits(image_sizes=(32, 64), augmentations=AUGMENTATION_KINDS, class_weights=True, recipe_fixed=True)
    seen: set[str] = set()
    for traits in (DataTraits(), opened):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(FINGERPRINT_DRAWS):
            trial = study.ask()
            space.suggest(trial, (28, 28, 1), 10, 10, traits)
            for name, distribution in trial.distributions.items():
                canonical = json.dumps(json.loads(distribution_to_json(distribution)), sort_keys=True)
                seen.add(f"{name} {canonical}")
            study.tell(trial, 0.0)
    return hashlib.sha256("\n".join(sorted(seen)).encode()).hexdigest()[:16]


def _cnn_space():
    from search_spaces import get_space

    return get_space(SPACE)


def _relative(path: Path) -> str:
    """`path` relative to the repository when inside it (what a committed file should name), else absolute."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _write_json(path: Path, content: dict) -> None:
    """Write `content` whole or not at all: a run cut short leaves the last complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(content, indent=2) + "\n")
    part.replace(path)


# --------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class DataSetPlan:
    """One data set, loaded, with this machine's speed and the `--budget` plan on it: what judging a configuration needs."""

    name: str
    config: Any
    prepared: Any
    speed: Any
    plan: Any
    full: Any  # the full-fidelity rung: fold 0's training part, validated on its whole hold-out

    @classmethod
    def load(cls, name: str, budget: float, suite_dir: str | None) -> DataSetPlan:
        from benchmarks.budget import _calibrated, _full_rung, _plan_for, _prepared

        config, prepared = _prepared(name, budget, None, suite_dir)
        speed = _calibrated(prepared)
        plan = _plan_for(prepared, speed, budget)
        return cls(name, config, prepared, speed, plan, _full_rung(config, prepared, plan))

    def spec(self, params: dict):
        """The spec `params` give on this data set, as a budget search builds a start, or the reason there is none."""
        from benchmarks.budget import _named_spec

        try:
            spec = _named_spec(self.config, self.prepared, params)
        except ValueError as error:  # a parameter this data set draws is missing (NamedParameters)
            return None, str(error)
        problems = spec.model.problems()
        return (None, "; ".join(problems)) if problems else (spec, "")

    def fits(self, spec) -> bool:
        """Whether the budget's final phase fits the plan's fewest final epochs of `spec` (what a budget search judges)."""
        final_seconds = self.plan.final_deadline - self.plan.search_deadline
        per_image = self.speed.train_seconds_per_image(spec)
        return self.plan.train_images * self.plan.policy.min_final_epochs * per_image <= final_seconds

    def judge(self, params: dict, seed: int) -> dict:
        """One cell of the matrix: `params` trained with the plan's final recipe, its fold-0 hold-out accuracy."""
        from benchmarks.budget import _judge

        spec, problems = self.spec(params)
        if spec is None:
            return {"holdout_accuracy": None, "problems": problems}
        per_image = self.speed.train_seconds_per_image(spec) * self.plan.policy.speed_margin
        epochs = self.plan.epochs_for(self.full, per_image)
        started = time.time()
        accuracy = _judge(self.config, self.prepared, spec, self.full, epochs, seed)
        return {
            "holdout_accuracy": accuracy,
            "epochs": epochs,
            "seconds": time.time() - started,
            "predicted_ms_per_image": per_image * 1000,
            "train_images": self.full.images,
            "validation_images": self.full.validation_images,
            "seed": seed,
        }


def _draws(space, seed: int) -> Iterator[tuple[int, dict]]:
    """The space's draws in a seeded RandomSampler's order, each (index, parameters)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    traits = _traits_for_draws()
    for index in itertools.count():
        trial = study.ask()
        space.suggest(trial, (28, 28, 1), 10, 10, traits)
        study.tell(trial, 0.0)
        yield index, dict(trial.params)


def _same(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def _session_candidates(matrix: dict, space, args: argparse.Namespace, data_sets) -> list[dict]:
    """This run's candidates, added to `matrix` where new: named starts and baselines (`--limit`), then N draws.

    A named configuration whose parameters a candidate already has (a built start is a draw of an
    earlier run) is that candidate. Draws already in the matrix count; new ones continue the sampler's
    sequence where the last run stopped, kept only when buildable and fast enough on every data set.
    """
    stored = {candidate["name"]: candidate for candidate in matrix["candidates"]}
    by_params = {_same(candidate["params"]): candidate for candidate in matrix["candidates"]}
    session = []
    named = [("portfolio", n, p) for n, p in space.portfolio.items()] + [
        ("baseline", n, p) for n, p in space.baselines.items()
    ]
    for kind, name, params in named[: args.limit]:
        candidate = stored.get(name) or by_params.get(_same(dict(params)))
        if candidate is None:
            candidate = {"name": name, "kind": kind, "params": dict(params)}
            matrix["candidates"].append(candidate)
            by_params[_same(candidate["params"])] = candidate
        session.append(candidate)
    draws = [candidate for candidate in matrix["candidates"] if candidate["kind"] == "draw"][: args.candidates]
    sets: list[DataSetPlan] = []
    first, most = matrix["next_draw"], 1000 * max(1, args.candidates)
    for index, params in itertools.islice(_draws(space, matrix["seed"]), first, first + most):
        if len(draws) >= args.candidates:
            break
        sets = sets or data_sets()
        matrix["next_draw"] = index + 1
        specs = [data_set.spec(params)[0] for data_set in sets]
        if all(spec is not None and data_set.fits(spec) for spec, data_set in zip(specs, sets)):
            candidate = {"name": f"draw-{index}", "kind": "draw", "params": params}
            matrix["candidates"].append(candidate)
            draws.append(candidate)
    if len(draws) < args.candidates:
        raise SystemExit(
            f"evaluate: only {len(draws)} of {most} draws are buildable and fast enough on every data set; "
            "give a longer --budget or fewer --candidates"
        )
    return session + draws


def part_evaluate(args: argparse.Namespace) -> dict:
    """Train every candidate on every data set with the budget's final recipe; keep what FILE holds already."""
    from benchmarks.run import machine_info

    space = _cnn_space()
    fingerprint = space_fingerprint(space)
    out = Path(args.out)
    if out.exists():
        matrix = json.loads(out.read_text())
        for key, value in (("fingerprint", fingerprint), ("budget", args.budget), ("seed", args.seed)):
            if matrix[key] != value:
                raise SystemExit(
                    f"evaluate: {out} was started with {key} {matrix[key]!r}, this run has {value!r} "
                    "(a changed space, or other options); give another --out"
                )
    else:
        matrix = {
            "space": SPACE,
            "fingerprint": fingerprint,
            "budget": args.budget,
            "seed": args.seed,
            "datasets": [],
            "candidates": [],
            "next_draw": 0,
            "results": {},
            "runs": [],
        }
    matrix["datasets"] += [name for name in args.datasets if name not in matrix["datasets"]]
    matrix["runs"].append({"command": args.command, "machine": machine_info()})
    loaded: dict[str, DataSetPlan] = {}

    def data_set(name: str) -> DataSetPlan:  # loaded and calibrated once, when first needed
        if name not in loaded:
            print(f"evaluate: loading and calibrating {name}", flush=True)
            loaded[name] = DataSetPlan.load(name, args.budget, args.suite_dir)
        return loaded[name]

    candidates = _session_candidates(matrix, space, args, lambda: [data_set(name) for name in args.datasets])
    _write_json(out, matrix)
    seeds = {candidate["name"]: index for index, candidate in enumerate(matrix["candidates"])}
    trained = 0
    for candidate in candidates:
        cells = matrix["results"].setdefault(candidate["name"], {})
        for name in args.datasets:
            if name in cells:
                continue
            plan = data_set(name)
            cells[name] = plan.judge(candidate["params"], plan.config.seed + seeds[candidate["name"]])
            trained += 1
            _write_json(out, matrix)
            cell = cells[name]
            figure = (
                "unbuildable: " + cell["problems"]
                if cell["holdout_accuracy"] is None
                else (f"{cell['epochs']:>2} epochs: {cell['holdout_accuracy']:.4f} ({cell['seconds']:.0f}s)")
            )
            print(f"{candidate['name']:24} {name:20} {figure}", flush=True)
    print(f"evaluate: {trained} trained, {len(candidates) * len(args.datasets) - trained} kept from {out}")
    return matrix


# --------------------------------------------------------------------------- build


def normalised(accuracies: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """Per data set, (accuracy - worst) / (best - worst) over the candidates; unbuildable (None) is 0, a tie all 1."""
    datasets = list(next(iter(accuracies.values())))
    scaled: dict[str, dict[str, float]] = {name: {} for name in accuracies}
    for dataset in datasets:
        values = [cells[dataset] for cells in accuracies.values() if cells[dataset] is not None]
        worst, best = (min(values), max(values)) if values else (0.0, 0.0)
        for name, cells in accuracies.items():
            value = cells[dataset]
            scaled[name][dataset] = 0.0 if value is None else (value - worst) / (best - worst) if best > worst else 1.0
    return scaled


def greedy_portfolio(scores: dict[str, dict[str, float]], size: int) -> list[tuple[str, float]]:
    """Up to `size` candidates, in the order chosen, each with the portfolio's score once it is added.

    The score of a portfolio is the mean over data sets of its best (normalised) score there; each
    step adds the candidate that raises it most (the first in `scores`' order on a tie), and the
    construction stops when no candidate raises it.
    """
    datasets = list(next(iter(scores.values())))
    best = dict.fromkeys(datasets, 0.0)
    chosen: list[tuple[str, float]] = []

    def score_with(name: str) -> float:
        return sum(max(best[d], scores[name][d]) for d in datasets) / len(datasets)

    while len(chosen) < size:
        current = sum(best.values()) / len(datasets)
        left = [name for name in scores if name not in {picked for picked, _ in chosen}]
        if not left:
            break
        name = max(left, key=score_with)  # max keeps the first of equal scores
        if score_with(name) <= current + 1e-12:
            break
        chosen.append((name, score_with(name)))
        best = {d: max(best[d], scores[name][d]) for d in datasets}
    return chosen


def _start_name(candidate: str) -> str:
    return candidate if candidate.startswith("start-") else f"start-{candidate}"


def part_build(args: argparse.Namespace) -> dict:
    """Choose the portfolio from a matrix (or keep the current one) and write the space's portfolio file."""
    space = _cnn_space()
    fingerprint = space_fingerprint(space)
    out = Path(args.out)
    if args.keep_current:
        return _keep_current(space, fingerprint, out, args.command)
    if not args.matrix:
        raise SystemExit("build: give --matrix FILE (written by evaluate), or --keep-current")
    matrix = json.loads(Path(args.matrix).read_text())
    if matrix["fingerprint"] != fingerprint:
        raise SystemExit(
            f"build: {args.matrix} was evaluated on another version of the {SPACE} space (fingerprint "
            f"{matrix['fingerprint']}, now {fingerprint}); evaluate again with another --out"
        )
    datasets = matrix["datasets"]
    complete = [c for c in matrix["candidates"] if all(d in matrix["results"].get(c["name"], {}) for d in datasets)]
    if not complete:
        raise SystemExit(
            f"build: no candidate in {args.matrix} has been evaluated on every data set ({', '.join(datasets)})"
        )
    left_out = len(matrix["candidates"]) - len(complete)
    if left_out:
        print(f"build: {left_out} candidate(s) not yet evaluated on every data set are left out")
    accuracies = {c["name"]: {d: matrix["results"][c["name"]][d]["holdout_accuracy"] for d in datasets} for c in complete}
    scores = normalised(accuracies)
    params = {c["name"]: c["params"] for c in complete}
    starts = [
        {
            "name": _start_name(name),
            "params": params[name],
            "candidate": name,
            "holdout_accuracy": accuracies[name],
            "normalised": scores[name],
            "portfolio_score": score,
        }
        for name, score in greedy_portfolio(scores, args.size)
    ]
    portfolio = {
        "space": SPACE,
        "fingerprint": fingerprint,
        "built_from": (
            f"greedy portfolio construction over {len(complete)} candidates x {len(datasets)} data sets: each "
            "data set's fold-0 hold-out accuracies (training split only) normalised to (accuracy - worst) / "
            "(best - worst), unbuildable as worst; each start the one that most raised the mean over data sets of "
            "the portfolio's best (portfolio_score: that mean once it was added)"
        ),
        "command": args.command,
        "matrix": _relative(Path(args.matrix)),
        "budget": matrix["budget"],
        "datasets": datasets,
        "starts": starts,
    }
    _write_json(out, portfolio)
    for start in starts:
        print(f"{start['name']:28} portfolio score {start['portfolio_score']:.4f}")
    print(f"build: {len(starts)} starts -> {out}")
    return portfolio


def _keep_current(space, fingerprint: str, out: Path, command: str) -> dict:
    """The space's current starts, still the hand-picked ones, stamped with today's fingerprint."""
    if PORTFOLIO_FILE.exists() and json.loads(PORTFOLIO_FILE.read_text()).get("matrix"):
        raise SystemExit(
            f"build --keep-current: {_relative(PORTFOLIO_FILE)} was built from an evaluation, which a changed space "
            f"invalidates; rebuild it: {REBUILD}"
        )
    portfolio = {
        "space": SPACE,
        "fingerprint": fingerprint,
        "built_from": HAND_PICKED,
        "command": command,
        "matrix": None,
        "datasets": [],
        "starts": [{"name": name, "params": dict(params)} for name, params in space.portfolio.items()],
    }
    _write_json(out, portfolio)
    print(f"build: the {len(portfolio['starts'])} current starts, hand-picked, -> {out}")
    return portfolio


def main(argv: list[str] | None = None) -> int:
    from benchmarks.budget import duration_argument
    from benchmarks.suite import SUITE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    evaluate = parts.add_parser("evaluate", help="train the candidates on the data sets; write the matrix")
    evaluate.add_argument("--datasets", nargs="+", default=list(SUITE), help=f"suite sets (default all: {', '.join(SUITE)})")
    evaluate.add_argument("--suite-dir", help="the folder 'benchmarks/suite.py make --out DIR' wrote the made sets to")
    evaluate.add_argument("--candidates", type=int, required=True, help="how many draws of the space besides the named")
    evaluate.add_argument(
        "--budget", type=duration_argument, default=300.0, help="the budget whose final recipe trains each (5m)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="the RandomSampler's seed for the draws")
    evaluate.add_argument(
        "--limit", type=int, help="only the first N named candidates (portfolio starts, then seed baselines): a quick check"
    )
    evaluate.add_argument("--out", required=True, help="the matrix's JSON file; results already in it are kept")
    build = parts.add_parser("build", help="choose the portfolio greedily from a matrix; write the space's portfolio file")
    build.add_argument("--matrix", help="the JSON file evaluate wrote")
    build.add_argument("--size", type=int, default=5, help="at most this many starts")
    build.add_argument("--out", default=str(PORTFOLIO_FILE), help=f"default {_relative(PORTFOLIO_FILE)}")
    build.add_argument(
        "--keep-current", action="store_true", help="write the current hand-picked starts with the space's fingerprint"
    )
    args = parser.parse_args(argv)
    args.command = "python benchmarks/portfolio.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (part_evaluate if args.part == "evaluate" else part_build)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
