"""What a budget's plan is worth, measured: `python benchmarks/budget.py PART [options]`.

Parts (each prints a table and writes benchmarks/results/budget-PART.json, but for rehearse and report):

- `plan`: calibrate this machine on a data set and print the plans of several
  budgets (rungs, deadlines): what `--budget` would do here, in seconds.
- `rank`: do the cheap rungs rank configurations as a full training does?
  (`--storage URL --study NAME`: judge the rungs that budget run planned.)
  M configurations (the space's portfolio starts, then draws of the space as a budget search draws them:
  buildable, and fast enough for the final phase of the given budget) are trained at every rung of that
  budget's plan and at full fidelity (the final recipe: every image of fold 0's training part, for the
  epochs the budget's final phase gives the configuration, cosine to zero), all validated on fold 0's
  whole hold-out; prints Spearman's rank correlation of each rung with the full fidelity. Only the
  training split is used: the test split stays sealed.
- `starts`: the named configurations (`--names`: portfolio starts or seed
  baselines) trained at full fidelity only, as `rank` trains them (fold 0's
  training part, the epochs the `--budget` plan's final phase gives each,
  cosine to zero), validated on fold 0's hold-out: which start a budget of
  that length should have, decided on the training split alone.
- `rehearse`: a whole `--budget` run, as a user types it, on the training
  split alone: a stratified 1/K of the training images (K the study's
  folds, split with its seed) is written as the test split of a copy of
  the data set (an image folder as train/ and test/ folders, arrays as an
  .npz), the rest as its training split, and the run is made on the copy in
  a fresh folder. The card's "test" accuracy is then a hold-out accuracy:
  the search's arms (`--arm`, tuner.budget.plan's ARMS) and plan settings
  (`--set NAME=VALUE`, fields of its PlanPolicy) are compared end to end
  without a sealed test split. Any suite set (benchmarks/suite.py), study,
  .npz or image folder. Writes benchmarks/results/rehearse-*.json, with
  every final model's hold-out accuracy and that of the average of the
  first k of them (what each ensemble member adds), and where the data
  admit a mirror, the same figures with flip test-time augmentation.
- `compare`: `rehearse` for every `--arms` arm on every `--datasets` set,
  once per `--seeds` seed (the study's seed: its hold-out, folds and
  draws), and a table of the hold-out accuracies side by side: mean, sd,
  min, max and the paired difference to the first arm, per data set.
  `--peer` adds KerasTuner's Hyperband over cnn_cpu's space
  (benchmarks/peer.py, pip install keras-tuner) on the same rehearsal copy
  and wall clock, as arm `kerastuner-hyperband`: the tuner and its peer in
  one table. Resumable (a finished run is kept); writes
  benchmarks/results/compare-BUDGETs-WORK.json after every run.
- `gain`: after a budget run (`--storage URL --study NAME`), train the best
  seed baseline (best as the run ranks configurations: highest rung, then
  predicted accuracy) with the winner's final recipe and time: cosine to zero
  over the whole epochs (at most 40) that the winner's final-training seconds
  buy at the baseline's speed measured in the run. Epochs, not a deadline, so
  the figure does not depend on what else runs beside the benchmark. Tests it
  once and prints the winner's test accuracy beside it, with the run's wall
  time against its budget.
- `report`: the pre-registered report (docs/benchmarks.md): on a committed
  tree and a quiet machine, `--runs` fresh `python -m tuner DATASET
  --budget B --no-progress` runs, every test figure, mean, sd, min and max
  in benchmarks/results/report-COMMIT-DATASET-BUDGET.json and BENCHMARKS.md.
  The same command continues a report that a session ended, on the same code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"


def _save(part: str, results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"budget-{part}.json").write_text(json.dumps(results, indent=2) + "\n")


def _prepared(dataset: str, budget: float, data_dir: str | None, suite_dir: str | None = None):
    """(config, prepared search) of `dataset` (a suite set, a study, an .npz or an image folder) under `budget`."""
    from tuner.search.study import prepare

    study, overrides = _source(dataset, data_dir, suite_dir)
    config = _config(study, {**overrides, "budget": budget})
    return config, prepare(config, recipe_fixed=True)


def _calibrated(prepared):
    from tuner.training.calibration import calibrate_dataset

    return calibrate_dataset(prepared.dataset)[0]


def _plan_for(prepared, speed, budget: float):
    """The plan of `budget` seconds as if 10 s had gone to loading the data."""
    from tuner.budget.rung_search import plan_for

    now = time.time()
    with_budget = dataclasses.replace(prepared, config=dataclasses.replace(prepared.config, budget=budget))
    return plan_for(with_budget, speed, started=now - 10, now=now)


def part_plan(args: argparse.Namespace) -> dict:
    from benchmarks.run import machine_info

    _, prepared = _prepared(args.dataset, 3600, args.data_dir, args.suite_dir)
    speed = _calibrated(prepared)
    results = {"machine": machine_info(), "dataset": args.dataset, "speed": dataclasses.asdict(speed), "plans": {}}
    for budget in args.budgets:
        plan = _plan_for(prepared, speed, budget)
        results["plans"][str(budget)] = {
            "rungs": [dataclasses.asdict(r) for r in plan.rungs],
            "search_seconds": plan.search_deadline - plan.started,
            "final_seconds": plan.final_deadline - plan.search_deadline,
        }
        print(f"\n{args.dataset}, budget {budget:.0f}s (10 s taken before planning, as data loading takes):")
        print("\n".join(plan.describe()))
    return results


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _named_spec(config, prepared, params: dict):
    """The spec of a named parameter set (a portfolio start or a seed baseline), as a budget search builds it."""
    from tuner.search.objective import spec_for_params

    return spec_for_params(prepared.space, params, prepared.dataset, config.epochs, prepared.objective.traits)


def _full_rung(config, prepared, plan):
    """Full fidelity: the final recipe on every search image, validated on fold 0's whole hold-out."""
    from tuner.budget.plan import MATCHED, Rung

    return Rung(len(plan.rungs), plan.pool_images, MATCHED, len(prepared.dataset.y_train) // config.folds)


def _judge(config, prepared, spec, rung, epochs: int, seed: int) -> float:
    """`spec`'s fold-0 hold-out accuracy after `epochs` epochs (cosine to zero) on the rung's images."""
    from tuner.budget.rung_search import budget_recipe, rung_harness
    from tuner.training.harness import cross_validate

    dataset = prepared.dataset
    return cross_validate(
        budget_recipe(spec, epochs),
        dataset.x_train,
        dataset.y_train,
        seed=seed,
        split_seed=config.seed,
        **rung_harness(rung, epochs, config.folds),
    ).mean_val_accuracy


def part_rank(args: argparse.Namespace) -> dict:
    import optuna

    from benchmarks.run import machine_info
    from tuner.budget.plan import PLAN_ATTR
    from tuner.budget.rungs import extrapolate

    config, prepared = _prepared(args.dataset, args.budget, args.data_dir, args.suite_dir)
    speed = _calibrated(prepared)
    plan = _plan_for(prepared, speed, args.budget)
    if args.storage:  # judge the rungs a real budget run used
        from tuner.budget.plan import BudgetPlan
        from tuner.storage.storages import open_storage

        stored = optuna.load_study(study_name=args.study, storage=open_storage(args.storage, heartbeat=False))
        plan = BudgetPlan.from_dict(stored.user_attrs[PLAN_ATTR])
    dataset = prepared.dataset
    final_seconds = plan.final_deadline - plan.search_deadline
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed), direction="maximize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    specs = []
    for name, params in prepared.space.portfolio.items():  # judged first by a budget search, as here
        if len(specs) < min(args.configs, args.portfolio):
            specs.append(({"portfolio": name}, _named_spec(config, prepared, params)))
    while len(specs) < args.configs:
        trial = sampler.ask()
        spec = prepared.space.suggest(
            trial, dataset.input_shape, dataset.num_classes, config.epochs, prepared.objective.traits
        )
        fits = plan.train_images * plan.policy.min_final_epochs * speed.train_seconds_per_image(spec) <= final_seconds
        sampler.tell(trial, 0.0)
        if not spec.model.problems() and fits:  # what a budget search would judge
            specs.append((trial.params, spec))
    pool = plan.pool_images
    full = _full_rung(config, prepared, plan)
    fidelities = [(f"rung {r.index}", r) for r in plan.rungs] + [("full", full)]
    scores: dict[str, list[float]] = {name: [] for name, _ in fidelities}
    seconds: dict[str, list[float]] = {name: [] for name, _ in fidelities}
    epochs_run: dict[str, list[int]] = {name: [] for name, _ in fidelities}
    for index, (_, spec) in enumerate(specs):
        per_image = speed.train_seconds_per_image(spec) * plan.policy.speed_margin
        for name, rung in fidelities:
            epochs = plan.epochs_for(rung, per_image)
            started = time.time()
            scores[name].append(_judge(config, prepared, spec, rung, epochs, config.seed + index))
            seconds[name].append(time.time() - started)
            epochs_run[name].append(epochs)
            print(
                f"config {index}: {name:7} {rung.images:>6} images x {epochs:>2} epochs: {scores[name][-1]:.4f} "
                f"({seconds[name][-1]:.0f}s)",
                flush=True,
            )
    correlation = {name: _spearman(scores[name], scores["full"]) for name, _ in fidelities[:-1]}
    for lower, upper in zip(plan.rungs, plan.rungs[1:]):  # what the search ranks by: the prediction for every image
        predicted = [
            extrapolate(value, upper.images, low, lower.images, len(dataset.y_train))
            for value, low in zip(scores[f"rung {upper.index}"], scores[f"rung {lower.index}"])
        ]
        scores[f"rung {upper.index} predicted"] = predicted
        correlation[f"rung {upper.index} predicted"] = _spearman(predicted, scores["full"])
    final_seconds = plan.matched_seconds or plan.final_deadline - plan.search_deadline
    print(
        f"\nSpearman rank correlation with full fidelity ({pool} images x the epochs {final_seconds:.0f}s of final "
        f"training give each configuration), {args.configs} configurations:"
    )
    for name, value in correlation.items():
        print(f"  {name}: {value:+.3f}")
    return {
        "machine": machine_info(),
        "dataset": args.dataset,
        "budget": args.budget,
        "configs": args.configs,
        "fidelities": [{"name": name, **dataclasses.asdict(rung)} for name, rung in fidelities],
        "scores": scores,
        "seconds": seconds,
        "epochs": epochs_run,
        "spearman_vs_full": correlation,
        "params": [params for params, _ in specs],
    }


def part_starts(args: argparse.Namespace) -> dict:
    """Each named configuration's hold-out accuracy after the final recipe the `--budget` plan gives it."""
    from benchmarks.run import machine_info

    if not args.names:
        raise SystemExit("starts: name the configurations to train with --names")
    config, prepared = _prepared(args.dataset, args.budget, args.data_dir, args.suite_dir)
    speed = _calibrated(prepared)
    plan = _plan_for(prepared, speed, args.budget)
    known = {**prepared.space.baselines, **prepared.space.portfolio}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {sorted(known)}")
    full = _full_rung(config, prepared, plan)
    final_seconds = plan.matched_seconds or plan.final_deadline - plan.search_deadline
    print(
        f"{args.budget:.0f}s plan: {final_seconds:.0f}s of final training; {full.images} images, "
        f"validated on {full.validation_images}",
        flush=True,
    )
    rows = []
    for index, name in enumerate(args.names):
        spec = _named_spec(config, prepared, known[name])
        per_image = speed.train_seconds_per_image(spec) * plan.policy.speed_margin
        epochs = plan.epochs_for(full, per_image)
        started = time.time()
        accuracy = _judge(config, prepared, spec, full, epochs, config.seed + index)
        row = {
            "name": name,
            "predicted_ms_per_image": per_image * 1000,
            "epochs": epochs,
            "holdout_accuracy": accuracy,
            "seconds": time.time() - started,
        }
        rows.append(row)
        print(
            f"{name:24} {row['predicted_ms_per_image']:.3f} ms/image x {epochs:>2} epochs: "
            f"{accuracy:.4f} ({row['seconds']:.0f}s)",
            flush=True,
        )
    return {
        "machine": machine_info(),
        "dataset": args.dataset,
        "budget": args.budget,
        "speed": dataclasses.asdict(speed),
        "final_seconds": final_seconds,
        "train_images": full.images,
        "validation_images": full.validation_images,
        "starts": rows,
    }


def _source(dataset: str, data_dir: str | None, suite_dir: str | None) -> tuple[str | None, dict]:
    """(the study the user would run, its overrides) for a suite name, a study, an .npz file, an image folder."""
    from benchmarks.suite import SUITE

    if dataset in SUITE:
        args = SUITE[dataset].tuner_args(suite_dir)
        return args[0], {"data_dir": args[2] if len(args) > 2 else data_dir}
    if dataset.endswith(".npz"):
        from tuner.core.settings import safe_study_name

        return None, {"name": safe_study_name(Path(dataset).stem), "dataset": str(Path(dataset).resolve())}
    if Path(dataset).is_dir():
        return f"folder:{Path(dataset).resolve()}", {}
    return dataset, {"data_dir": data_dir}


def _config(study: str | None, overrides: dict):
    from tuner.core.settings import StudyConfig
    from tuner.core.study_file import load_study_config

    if study is None:
        return StudyConfig(**{k: v for k, v in overrides.items() if v is not None}).validate()
    return load_study_config(study, overrides)


def _rehearsal_data(study: str | None, overrides: dict, folder: Path) -> tuple[dict, dict]:
    """Write `folder`: the training split, less a stratified 1/K (K the study's folds, its seed), and that 1/K as test.

    An image folder is copied as `train/` and `test/` folders of its training files (the loader reads that
    layout as its split); arrays are written as an .npz of x_train, y_train, x_test, y_test. The test split
    of the source is never read. Returns (what was written, the overrides that point the study at it).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    from tuner.data import load_study_data

    config = _config(study, overrides)
    dataset = load_study_data(config, 0)
    y = np.asarray(dataset.y_train)
    train, held = train_test_split(np.arange(len(y)), test_size=1 / config.folds, stratify=y, random_state=config.seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"source": dataset.source, "train_images": len(train), "holdout_images": len(held), "folds": config.folds}
    if config.is_folder():
        import shutil

        paths = dataset.options["train_paths"]  # type: ignore[attr-defined]
        for part, rows in (("train", train), ("test", held)):
            for row in rows:
                target = folder / part / dataset.class_names[y[row]] / f"{row:06d}-{Path(paths[row]).name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(paths[row], target)
        data["layout"] = "image folder: train/ and test/ class folders of the source's training files"
        return data, {**overrides, "dataset": f"folder:{folder}", "data_dir": None}
    x = np.asarray(dataset.x_train)
    pixels = np.rint(x * 255).clip(0, 255).astype(np.uint8)
    data["layout"] = ".npz of 8-bit pixels"
    data["pixel_rounding"] = float(np.abs(pixels / 255.0 - x).max())  # 0 for 8-bit sources (Fashion-MNIST, MNIST)
    target = folder / "data.npz"
    np.savez(target, x_train=pixels[train], y_train=y[train], x_test=pixels[held], y_test=y[held])
    return data, {**overrides, "dataset": str(target), "data_dir": None}


_REHEARSAL_RUN = """
import dataclasses, json, os, sys, time
started = time.time()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tuner.budget.plan import DEFAULT_POLICY
from tuner.budget.strategy import BudgetStrategy
from tuner.cli import print_run
from tuner.core.settings import StudyConfig
from tuner.core.study_file import load_study_config
from tuner.run.pipeline import run_study
from tuner.search.study import prepare
fields = {f.name for f in dataclasses.fields(DEFAULT_POLICY)}
changes = {}
for pair in sys.argv[1].split(",") if sys.argv[1] else []:
    name, value = pair.split("=")
    if name not in fields:
        raise SystemExit(f"the plan policy has no constant {name}; choose from {', '.join(sorted(fields))}")
    changes[name] = type(getattr(DEFAULT_POLICY, name))(value)
study, overrides, storage = json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
given = {k: v for k, v in overrides.items() if v is not None}
config = load_study_config(study, given) if study else StudyConfig(**given).validate()
policy = dataclasses.replace(DEFAULT_POLICY, **changes)
strategy = BudgetStrategy(prepare(config, recipe_fixed=True), started, policy=policy)
sys.exit(print_run(run_study(config, started=started, storage_url=storage, progress=False, strategy=strategy)))
"""


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in Path(text).name or text).strip("-") or "data"


def holdout_figures(config, exports: Path, manifest: dict, stored) -> dict:
    """What the run's final models score on the hold-out, read back by the benchmark from their files.

    `ensemble_prefix`: the accuracy of the mean probabilities of the first k models, k = 1, 2, ..., in the
    order the run trained them: what each next-best member adds (the rule for which members it keeps,
    PlanPolicy.least_member_epochs, is judged on these). Like the ensemble
    (tuner.results.export_study.same_shape_members), it leaves out models of another input shape; the first
    value is the winner's hold-out accuracy again. `test_time_flips`: per model, the flips it trained with
    (study `stored` holds its trial); `flip_tta_models` and `flip_tta_ensemble_prefix` are the same figures
    with each model as `--test-time-flips auto` exports it (tuner.results.mirrors.mirror_averaged: averaged
    over the image and those mirrors; a model that trained with none as it is), a final-recipe candidate
    measured before it is adopted.
    """
    import numpy as np

    from tuner.core.record import TrialRecord
    from tuner.data import load_study_data
    from tuner.results.export import evaluation_of
    from tuner.results.mirrors import exported_flips, mirror_averaged
    from tuner.results.predict import load_model

    x, y = load_study_data(config).test_split()  # the rehearsal copy's test split: the hold-out of the training split
    plain: list = []
    served: list = []
    flips: list[list[str]] = []
    for entry in manifest["models"]:
        model = load_model(exports / entry["model"])
        if tuple(model.input_shape[1:]) != tuple(x.shape[1:]):
            continue
        spec = TrialRecord.of(stored.trials[entry["trial"]]).spec
        assert spec is not None  # a budget run stores each trial's spec
        trained = exported_flips("auto", spec.model.augmentation)  # as --test-time-flips auto exports it
        plain.append(model.predict(x, batch_size=256, verbose=0))
        served.append(mirror_averaged(model, trained).predict(x, batch_size=256, verbose=0) if trained else plain[-1])
        flips.append(list(trained))

    def prefixes(probabilities: list) -> list[float]:
        return [evaluation_of(np.mean(probabilities[:k], axis=0), y).accuracy for k in range(1, len(probabilities) + 1)]

    return {
        "ensemble_prefix": prefixes(plain),
        "test_time_flips": flips,
        "flip_tta_models": [evaluation_of(p, y).accuracy for p in served],
        "flip_tta_ensemble_prefix": prefixes(served),
    }


def part_rehearse(args: argparse.Namespace) -> dict:
    """One budget run on a copy of the training split, a stratified 1/K of it standing in for the test split."""
    import subprocess
    from collections import Counter

    import optuna

    from benchmarks.run import machine_info
    from tuner.budget.plan import PLAN_ATTR, BudgetPlan
    from tuner.core.record import TrialRecord
    from tuner.storage.storages import open_storage

    work = Path(args.work).resolve()
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"rehearse: {work} is not empty; give an empty or new --work folder")
    study, overrides = _source(args.dataset, args.data_dir, args.suite_dir)
    if args.study_seed is not None:  # another seed: another hold-out, other folds, other draws
        overrides["seed"] = args.study_seed
    data, rehearsal = _rehearsal_data(study, overrides, work / "data")
    rehearsal["budget"] = args.budget
    name = _config(study, rehearsal).name
    storage = f"sqlite:///{work / 'tuner.db'}"
    settings = [f"arm={args.arm}", *args.set]
    print(
        f"rehearse: {data['train_images']} training images, {data['holdout_images']} held out; "
        f"arm {args.arm}; settings {','.join(args.set) or 'as committed'}",
        flush=True,
    )
    started = time.time()
    with (work / "run.log").open("w") as log:
        code = subprocess.call(
            [sys.executable, "-c", _REHEARSAL_RUN, ",".join(settings), json.dumps(study), json.dumps(rehearsal), storage],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    wall = time.time() - started
    if code != 0:
        tail = (work / "run.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"rehearse: the run exited with {code} ({tail[0]}); see {work / 'run.log'}")
    stored = optuna.load_study(study_name=name, storage=open_storage(storage, heartbeat=False))
    manifest = json.loads((work / "exports" / name / "export.json").read_text())
    complete = stored.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    judged = Counter(TrialRecord.of(trial).rung for trial in complete)
    winner = manifest["models"][0]
    figures = {
        "machine": machine_info(),
        "dataset": args.dataset,
        "data": data,
        "budget": args.budget,
        "arm": args.arm,
        "planned_arm": BudgetPlan.from_dict(stored.user_attrs[PLAN_ATTR]).policy.arm,  # a single cheap rung: "none"
        "study_seed": args.study_seed,
        "settings": ",".join(args.set) or "as committed",
        "wall_seconds": wall,
        "wall_vs_budget": wall / args.budget,
        "judged_per_rung": [judged[rung] for rung in sorted(judged)],
        "winner_trial": winner["trial"],
        "winner_start": TrialRecord.of(stored.trials[winner["trial"]]).portfolio,
        "winner_final_epochs": winner["final_epochs"],
        "winner_holdout_accuracy": winner["test_accuracy"],
        "ensemble_holdout_accuracy": (manifest.get("ensemble") or {}).get("test_accuracy"),  # None: one model
        "final_models": [
            {
                "trial": m["trial"],
                "final_epochs": m["final_epochs"],
                "holdout_accuracy": m["test_accuracy"],
                "trained_flip": stored.trials[m["trial"]].params.get("augment_flip"),  # what flip-averaging may lean on
            }
            for m in manifest["models"]
        ],
        **_holdout_keys(holdout_figures(_config(study, rehearsal), work / "exports" / name, manifest, stored)),
        "log": str(work / "run.log"),
    }
    print(json.dumps(figures, indent=2))
    return figures


def _holdout_keys(figures: dict) -> dict:
    """`holdout_figures` under the rehearsal JSON's keys."""
    return {
        "ensemble_prefix_holdout_accuracy": figures["ensemble_prefix"],
        "test_time_flips": figures["test_time_flips"],  # per same-shape final model, in training order
        "flip_tta_holdout_accuracy": figures["flip_tta_models"],  # (the same models, the same order)
        "flip_tta_ensemble_prefix_holdout_accuracy": figures["flip_tta_ensemble_prefix"],
    }


def _mean_sd(values: list[float]) -> tuple[float, float]:
    import statistics

    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spread(values: list[float]) -> dict:
    """Every value, their mean and sd (0 for one value), min and max: how a report states its runs."""
    mean, sd = _mean_sd(values)
    return {"values": values, "mean": mean, "sd": sd, "min": min(values), "max": max(values)}


def compare_table(runs: list[dict], baseline_arm: str) -> list[dict]:
    """Per data set and arm: the hold-out accuracies' mean, sd, min, max, and the paired difference to `baseline_arm`."""
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        of_set = [r for r in runs if r["dataset"] == dataset]
        baseline = {r["study_seed"]: r["winner_holdout_accuracy"] for r in of_set if r["arm"] == baseline_arm}
        for arm in dict.fromkeys(r["arm"] for r in of_set):
            figures = {r["study_seed"]: r["winner_holdout_accuracy"] for r in of_set if r["arm"] == arm}
            mean, sd = _mean_sd(list(figures.values()))
            paired = [figures[seed] - baseline[seed] for seed in figures if seed in baseline]
            gain = _mean_sd(paired) if paired and arm != baseline_arm else None
            rows.append(
                {
                    "dataset": dataset,
                    "arm": arm,
                    "runs": len(figures),
                    "mean": mean,
                    "sd": sd,
                    "min": min(figures.values()),
                    "max": max(figures.values()),
                    f"minus_{baseline_arm}": gain,
                    "wall_vs_budget_max": max(r["wall_vs_budget"] for r in of_set if r["arm"] == arm),
                }
            )
    return rows


def _table_text(rows: list[dict], baseline_arm: str) -> str:
    lines = [
        f"| data set | arm | runs | hold-out accuracy mean ± sd | min-max | minus {baseline_arm} (paired) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        gain = row[f"minus_{baseline_arm}"]
        paired = "" if gain is None else f"{100 * gain[0]:+.2f} ± {100 * gain[1]:.2f} pts"
        lines.append(
            f"| {row['dataset']} | {row['arm']} | {row['runs']} | {100 * row['mean']:.2f} ± {100 * row['sd']:.2f} | "
            f"{100 * row['min']:.2f}-{100 * row['max']:.2f} | {paired} |"
        )
    return "\n".join(lines)


PEER_ARM = "kerastuner-hyperband"  # benchmarks/peer.py's rows in a comparison


def _run_peer(args: argparse.Namespace, dataset: str, seed: int, folder: Path) -> None:
    """benchmarks/peer.py on `dataset`'s rehearsal copy for `seed`, in its own process, logged to folder/run.log."""
    import subprocess

    command = [sys.executable, str(REPO / "benchmarks" / "peer.py"), "--dataset", dataset, "--budget", str(args.budget)]
    command += ["--study-seed", str(seed), "--work", str(folder)]
    command += ["--suite-dir", args.suite_dir] if args.suite_dir else []
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    folder.mkdir(parents=True)
    with (folder / "run.log").open("w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    if code != 0:
        tail = (folder / "run.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"compare: the KerasTuner peer exited with {code} ({tail[0]}); see {folder / 'run.log'}")


def part_compare(args: argparse.Namespace) -> dict:
    """Every arm on every data set for every seed, each a rehearsal of its own, and the table of them side by side.

    Runs go seed by seed (every arm of a seed before the next seed), so a comparison cut short stays
    balanced; a run whose folder holds its figures is not run again, so the same command resumes. With
    `--peer`, KerasTuner's Hyperband (benchmarks/peer.py) runs after the arms on each set and seed, on the
    same rehearsal copy and budget, and joins the table as one more arm.
    """
    work = Path(args.work or f"tuner-runs/compare-{args.budget:.0f}s").resolve()
    runs = []
    for seed in args.seeds:
        for dataset in args.datasets:
            for arm in args.arms + ([PEER_ARM] if args.peer else []):
                folder = work / f"{_slug(dataset)}-{_slug(arm)}-seed{seed}"
                done = folder / "figures.json"
                if not done.exists():
                    if folder.exists():
                        import shutil

                        shutil.rmtree(folder)  # a run cut short: start it again
                    print(f"compare: {dataset}, arm {arm}, seed {seed}", flush=True)
                    if arm == PEER_ARM:
                        _run_peer(args, dataset, seed, folder)  # it writes its own figures.json
                    else:
                        one = argparse.Namespace(**{**vars(args), "dataset": dataset, "arm": arm, "study_seed": seed})
                        one.work = str(folder)
                        done.parent.mkdir(parents=True, exist_ok=True)
                        figures = part_rehearse(one)
                        done.write_text(json.dumps(figures, indent=2) + "\n")
                runs.append(json.loads(done.read_text()))
                rows = compare_table(runs, args.arms[0])
                results = {"budget": args.budget, "arms": args.arms, "seeds": args.seeds, "table": rows, "runs": runs}
                results["peer"] = PEER_ARM if args.peer else None
                results["command"] = "python benchmarks/budget.py " + " ".join(args.argv)
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / f"compare-{args.budget:.0f}s-{work.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(_table_text(compare_table(runs, args.arms[0]), args.arms[0]))
    return {"runs": len(runs)}


def part_gain(args: argparse.Namespace) -> dict:
    import optuna

    from benchmarks.run import machine_info
    from tuner.budget.plan import PLAN_ATTR, BudgetPlan
    from tuner.core.record import TrialRecord
    from tuner.core.study_file import load_study_config
    from tuner.results.export import FinalPlan, export_trial
    from tuner.results.ranking import best_baseline
    from tuner.search.study import prepare
    from tuner.storage.storages import artifact_store, open_storage

    study = optuna.load_study(study_name=args.study, storage=open_storage(args.storage, heartbeat=False))
    result = study.user_attrs["budget_result"]
    plan = BudgetPlan.from_dict(study.user_attrs[PLAN_ATTR])
    config = load_study_config(args.dataset, {"budget": plan.budget, "data_dir": args.data_dir})
    prepared = prepare(config, recipe_fixed=True)
    manifest = json.loads((Path(args.exports) / "export.json").read_text())
    winner = manifest["models"][0]
    card = json.loads((Path(args.exports) / winner["model"].replace(".keras", ".card.json")).read_text())
    final_seconds = card["final_training"]["seconds"]
    best = best_baseline(study)
    assert best is not None, "no seed baseline was judged in this run"
    stored = TrialRecord.of(best)
    final = card["final_training"]
    per_image = stored.train_seconds_per_image or final["seconds"] / (final["epochs"] * final["images"])
    dataset = prepared.dataset
    epochs = max(1, plan.policy.final_epochs(final_seconds, len(dataset.y_train), per_image * plan.policy.speed_margin))
    test = dataset.test_split()
    out = Path(args.exports) / "baseline"
    out.mkdir(parents=True, exist_ok=True)
    rule = (
        f"benchmark: the winner's final recipe and time ({final_seconds:.0f}s), cosine to zero over the {epochs} "
        f"epochs that time buys at {per_image * 1000:.3f} ms per image (trial {best.number}'s speed in the run)"
    )
    assert stored.spec is not None and stored.spec.train.lr_schedule == "cosine"  # to zero over the epochs, as a final
    exported = export_trial(
        study,
        best,
        config,
        dataset,
        test,
        out,
        artifact_store(args.storage),
        plan=FinalPlan(epochs, rule),
    )
    figures = {
        "machine": machine_info(),
        "study": args.study,
        "budget": plan.budget,
        "wall_seconds": result["wall_seconds"],
        "wall_vs_budget": result["wall_seconds"] / plan.budget,
        "winner_trial": winner["trial"],
        "winner_test_accuracy": winner["test_accuracy"],
        "winner_final_epochs": winner["final_epochs"],
        "ensemble_test_accuracy": result.get("ensemble_test_accuracy"),
        "baseline": stored.baseline,
        "baseline_trial": best.number,
        "baseline_rung": stored.rung,
        "baseline_final_epochs": exported.final_epochs,
        "baseline_test_accuracy": exported.test_accuracy,
        "gain_points": (winner["test_accuracy"] - exported.test_accuracy) * 100,
    }
    print(json.dumps(figures, indent=2))
    return figures


def _git(*args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.rstrip("\n")


def _cpu(machine: dict) -> str:
    """The CPU as a report names it: model name, family/model and vector features where recorded, cores."""
    known = "family/model " + machine["cpu_family_model"] if "cpu_family_model" in machine else ""
    details = ", ".join(part for part in (known, " ".join(machine.get("cpu_features", []))) if part)
    return f"{machine['cpu']} ({details + '; ' if details else ''}{machine['cores']} cores)"


def report_section(report: dict) -> str:
    """The report's section of BENCHMARKS.md: every run's figure, then mean ± sd, min and max."""
    runs, stats, machine = report["runs"], report["test_accuracy"], report["machine"]
    counted = f"{len(runs)} run" + ("s" if len(runs) != 1 else "")
    lines = [
        "",
        f"## Report {report['commit'][:10]}: {report['dataset']}, --budget {report['budget_text']}, "
        f"{counted} ({report['date'][:10]})",
        "",
        f"Pre-registered: `{report['command']}` on commit {report['commit']} (a clean tree), "
        f"{_cpu(machine)}, load average {report['load_at_start']:.2f} at the start "
        f"(refused above {report['max_load']:g}). Each run is `{report['tuner_command']}` in an empty folder, "
        "back to back within a session (a later session continues the runs left on the same code, its load checked "
        "again); the test split is read once per run, by its export. Logs: "
        f"`{report['logs']}`.",
        "",
        "| run | started (UTC) | winner's test accuracy | ensemble | wall s | share of budget |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, run in enumerate(runs, 1):
        ensemble = "-" if run["ensemble_test_accuracy"] is None else f"{run['ensemble_test_accuracy']:.4f}"
        started = run.get("date", report["date"])[:16].replace("T", " ")  # runs registered before runs had dates
        lines.append(
            f"| {index} | {started} | {run['test_accuracy']:.4f} | {ensemble} | {run['wall_seconds']:.0f} | "
            f"{run['wall_seconds'] / report['budget']:.1%} |"
        )
    for attempt in report.get("interrupted", []):
        figures = ", ".join(f"{value:.4f}" for value in attempt["test_accuracies"]) or "none"
        lines += [
            "",
            f"Run {attempt['run']} was cut short once (its session ended); its test figures: {figures} "
            f"(`{attempt['log']}`).",
        ]
    lines += [
        "",
        f"Winner's test accuracy: mean {stats['mean']:.4f} ± {stats['sd']:.4f} (sd), min {stats['min']:.4f}, "
        f"max {stats['max']:.4f}, over {counted}.",
        "",
    ]
    return "\n".join(lines)


RUN_FREE = ("benchmarks/results/", "docs/", "tests/", ".ci/", "deploy/")  # with every .md file: what no run reads


def _run_free(path: str) -> bool:
    return path.startswith(RUN_FREE) or path.endswith(".md")


def _same_code(commit: str) -> bool:
    """Whether HEAD runs what `commit` ran: the two differ, if at all, in what no run reads (results, prose, tests)."""
    return all(_run_free(path) for path in _git("diff", "--name-only", commit, "HEAD").splitlines())


def _uncommitted() -> list[str]:
    """Uncommitted changes that a run could read (results, prose and tests left out), as git prints them."""
    lines = _git("status", "--porcelain", "--untracked-files=all").splitlines()
    return [line for line in lines if not _run_free(line[3:].split(" -> ")[-1].strip('"'))]


def _registration(dataset: str, budget: float) -> tuple[Path, dict] | None:
    """A report of this code, data set and budget that is registered and not yet complete, to continue."""
    for path in sorted(RESULTS.glob(f"report-*-{_slug(dataset)}-*.json")):
        report = json.loads(path.read_text())
        if report["dataset"] != dataset or report["budget"] != budget or not _same_code(report["commit"]):
            continue
        if "test_accuracy" in report or "failed_run" in report:
            raise SystemExit(
                f"report: {path.name} already measured this code on {dataset} at this budget; "
                "a new report needs a change of code (earlier reports stay published)"
            )
        if "aborted" not in report:
            return path, report
    return None


def _test_figures(log: Path) -> list[float]:
    """The test accuracies a run's log printed (its final models'), in order."""
    import re

    return [float(value) for value in re.findall(r": test accuracy (\d\.\d+) after", log.read_text(errors="replace"))]


def part_report(args: argparse.Namespace) -> dict:
    """A pre-registered report: N fresh budget runs of a committed tree, alone on the machine, every figure kept.

    The same command continues a registered report that is not complete (a
    session ended it) on a later commit with the same code: the runs left are
    made, each with its own date, machine and load; an attempt that a run's log
    shows was cut short is published as such, with any test figure it printed.
    """
    import subprocess

    from benchmarks.run import machine_info
    from tuner.core.durations import format_duration

    dirty = _uncommitted()
    if dirty:
        raise SystemExit(
            f"report: the tree has uncommitted changes ({dirty[0].strip()} ...); commit or stash them, "
            "so that the report names the code it measured"
        )
    if args.runs < 1:
        raise SystemExit(f"report: --runs {args.runs}; give at least 1 run (3 or more for a spread)")
    load = os.getloadavg()[0]
    if load > args.max_load:
        raise SystemExit(
            f"report: load average {load:.2f} is over {args.max_load:g}; the runs must have the machine to "
            "themselves: stop the other work, or raise --max-load and say so"
        )
    head, budget_text = _git("rev-parse", "HEAD"), format_duration(args.budget)
    study, overrides = _source(args.dataset, args.data_dir, args.suite_dir)
    name = _config(study, overrides).name
    from benchmarks.suite import SUITE

    tuner_args = SUITE[args.dataset].tuner_args(args.suite_dir) if args.dataset in SUITE else [study or args.dataset]
    if args.dataset not in SUITE and args.data_dir:
        tuner_args += ["--data-dir", args.data_dir]
    tuner_args += ["--budget", budget_text, "--no-progress"]
    registered = _registration(args.dataset, args.budget)
    if registered is not None:
        out, report = registered
        if report["planned_runs"] != args.runs:
            raise SystemExit(
                f"report: {out.name} registered {report['planned_runs']} runs; give --runs {report['planned_runs']} "
                "to continue it"
            )
        print(f"report: continuing {out.name}: {len(report['runs'])} of {args.runs} runs done", flush=True)
    else:
        out = RESULTS / f"report-{head[:10]}-{_slug(args.dataset)}-{budget_text}.json"
        if out.exists():
            raise SystemExit(f"report: {out.name} exists (registered, then aborted); a new report needs a new commit")
        report = {
            "command": "python benchmarks/budget.py " + " ".join(args.argv),
            "commit": head,
            "dataset": args.dataset,
            "budget": args.budget,
            "budget_text": budget_text,
            "tuner_command": "python -m tuner " + " ".join(tuner_args),
            "machine": machine_info(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_at_start": load,
            "max_load": args.max_load,
            "planned_runs": args.runs,
            "logs": str((RESULTS / f"{out.stem}-run*.log").relative_to(REPO)),
            "runs": [],
        }
    stem = out.stem
    work = Path(args.work or f"tuner-runs/{stem}").resolve()

    def save() -> None:
        out.write_text(json.dumps(report, indent=2) + "\n")

    RESULTS.mkdir(parents=True, exist_ok=True)
    save()  # registered before the first run: an aborted report shows
    for index in range(len(report["runs"]) + 1, args.runs + 1):
        log_path = RESULTS / f"{stem}-run{index}.log"
        if log_path.exists():  # an attempt at this run that did not end (its session did): published as such
            attempts = report.setdefault("interrupted", [])
            kept = log_path.with_name(f"{stem}-run{index}-interrupted{len(attempts) + 1}.log")
            log_path.rename(kept)
            attempts.append({"run": index, "log": str(kept.relative_to(REPO)), "test_accuracies": _test_figures(kept)})
            save()
        folder, attempt = work / f"run-{index}", 1
        while folder.exists():  # an earlier attempt's folder stays as it was left
            attempt += 1
            folder = work / f"run-{index}-attempt{attempt}"
        folder.mkdir(parents=True)
        print(f"report: run {index} of {args.runs}: {report['tuner_command']} in {folder}", flush=True)
        started, began = time.time(), machine_info()
        with log_path.open("w") as log:
            code = subprocess.call(
                [sys.executable, "-m", "tuner", *tuner_args],
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        wall = time.time() - started
        if code != 0:
            report["failed_run"] = {"run": index, "exit": code, "log": str(log_path.relative_to(REPO))}
            save()
            raise SystemExit(f"report: run {index} exited with {code}; see {log_path} (kept in {out})")
        manifest = json.loads((folder / "exports" / name / "export.json").read_text())
        ensemble = manifest.get("ensemble") or {}
        report["runs"].append(
            {
                "test_accuracy": manifest["models"][0]["test_accuracy"],
                "winner_trial": manifest["models"][0]["trial"],
                "winner_final_epochs": manifest["models"][0]["final_epochs"],
                "ensemble_test_accuracy": ensemble.get("test_accuracy"),
                "wall_seconds": wall,
                "log": str(log_path.relative_to(REPO)),
                "date": began["date"],
                "head": head,
                "cpu": began["cpu"],
                "cores": began["cores"],
                "load_at_start": began["load_average_at_start"][0],
            }
        )
        save()
    report["test_accuracy"] = spread([run["test_accuracy"] for run in report["runs"]])
    save()
    with (REPO / "BENCHMARKS.md").open("a") as handle:
        handle.write(report_section(report))
    print(report_section(report))
    return report


def duration_argument(text: str) -> float:
    """An argparse type: "15m", "90s", "1h" or seconds, as `--budget` reads it; argparse's own error when not."""
    from tuner.core.durations import parse_duration
    from tuner.core.errors import TunerError

    try:
        return parse_duration(text)
    except TunerError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    from benchmarks.suite import SUITE
    from tuner.budget.plan import ARMS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("plan", "rank", "starts", "rehearse", "compare", "gain", "report"))
    parser.add_argument(
        "--dataset",
        default="fashion",
        help=f"a suite set ({', '.join(SUITE)}), a study, an .npz file or an image folder",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--suite-dir", help="the folder 'benchmarks/suite.py make --out DIR' wrote the made sets to")
    parser.add_argument("--budgets", type=float, nargs="+", default=[900, 3600, 28800])
    parser.add_argument("--budget", type=duration_argument, default=3600.0, help="a duration: 3600, 45s, 15m, 1h")
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--portfolio", type=int, default=2, help="rank: how many of the configurations are portfolio starts")
    parser.add_argument("--names", nargs="+", default=[], help="starts: portfolio starts or seed baselines to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", help="gain: the budget run's storage URL")
    parser.add_argument("--study", default="fashion", help="gain: the budget run's study name")
    parser.add_argument("--exports", default="exports/fashion", help="gain: the budget run's export folder")
    parser.add_argument(
        "--work", help="rehearse, report: an empty folder for the runs (default tuner-runs/rehearse, tuner-runs/report-...)"
    )
    parser.add_argument("--arm", choices=list(ARMS), default="portfolio+search", help="rehearse: what the search judges")
    parser.add_argument(
        "--set", nargs="*", default=[], help="rehearse: NAME=VALUE fields of the plan policy (tuner.budget.plan.PlanPolicy)"
    )
    parser.add_argument("--study-seed", type=int, help="rehearse: the study's seed (its hold-out, folds and draws)")
    parser.add_argument("--datasets", nargs="+", default=["digits"], help="compare: suite sets (or studies, files)")
    parser.add_argument(
        "--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="compare: the first is the baseline"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="compare: one run per arm and seed")
    parser.add_argument(
        "--peer", action="store_true", help=f"compare: also KerasTuner's Hyperband (benchmarks/peer.py) as arm {PEER_ARM}"
    )
    parser.add_argument("--runs", type=int, default=3, help="report: how many fresh runs")
    parser.add_argument("--max-load", type=float, default=1.0, help="report: refuse when the load average is above this")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    if args.part == "rehearse":
        args.work = args.work or "tuner-runs/rehearse"
    parts = {
        "plan": part_plan,
        "rank": part_rank,
        "starts": part_starts,
        "rehearse": part_rehearse,
        "compare": part_compare,
        "gain": part_gain,
        "report": part_report,
    }
    results = parts[args.part](args)
    if args.part in ("report", "compare"):  # their own files, written as they go
        return 0
    results["command"] = "python benchmarks/budget.py " + " ".join(args.argv)
    if args.part == "rehearse":
        name = f"rehearse-{_slug(args.dataset)}-{args.arm}-{args.budget:.0f}s-{Path(args.work).name}"
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    else:
        _save(args.part, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
