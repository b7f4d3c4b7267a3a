"""What a cheap rung's verdict rests on, on the suite's training splits: `python benchmarks/rung_judgement.py PART`.

A `--budget` run ranks configurations by their accuracy on a hold-out
after a short training. Two things bent that verdict on small sets, and
this script measures both, on hold-outs of the training split only (the
test split is never read):

- `mirrors --datasets SET [SET ...]`: how much of a linear classifier's
  skill above chance mirrored held-out images keep, per flip
  (tuner.data.suitability.mirror_kept_skill on the sample the trait
  detection reads), and the flips the tuner admits at MIRROR_KEPT_SKILL.
- `batch-norm --dataset SET --start NAME --images N [N ...] --momenta M [M ...]`:
  the start trained as a budget trains it (`--epochs`, cosine to zero) on
  N images of fold 0's training part, scored on up to N / 2 (at least 248)
  of fold 0's hold-out three ways: with the moving statistics of each
  batch-normalisation momentum, and with statistics recomputed on the
  training images at the end (a cumulative average over their batches
  with the final weights). `--flip` sets the start's flip, admitted even
  where the mirror test would refuse it. The momentum
  changes no weight (training normalises by each batch's own statistics),
  so every momentum's run trains the same weights.

Writes benchmarks/results/rung-judgement-PART.json (the batch-norm part
appends one record per command).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/rung_judgement.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks import run  # noqa: E402

SUITE_HELP = "the folder 'benchmarks/suite.py make --out DIR' wrote the made sets to"


def part_mirrors(args: argparse.Namespace) -> dict:
    from benchmarks.budget import _prepared
    from tuner.data import suitability

    rows = {}
    for name in args.datasets:
        _, prepared = _prepared(name, 300, None, args.suite_dir)
        dataset = prepared.dataset
        kept = suitability.mirror_kept_skill(*suitability.mirror_sample(dataset))
        rows[name] = {
            "input_shape": dataset.input_shape,
            "kept_skill": {flip: round(float(share), 3) for flip, share in kept.items()},
            "admitted_flips": list(suitability.admitted_flips(kept)),
            "augmentations": list(prepared.objective.traits.augmentations),
        }
        print(f"{name}: kept skill {rows[name]['kept_skill']}, flips admitted {rows[name]['admitted_flips']}")
    return {"threshold": suitability.MIRROR_KEPT_SKILL, "datasets": rows}


def _recomputed_statistics(model, x: np.ndarray, batch_size: int) -> None:
    """Batch normalisation's moving statistics replaced by their average over `x`'s batches (final weights)."""
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for number, start in enumerate(range(0, len(x), batch_size)):
        for layer in layers:
            layer.momentum = number / (number + 1)  # the first batch replaces, each later one averages in
        model(x[start : start + batch_size], training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def part_batch_norm(args: argparse.Namespace) -> dict:
    import keras

    from benchmarks.budget import _prepared
    from tuner.budget.rung_search import budget_recipe
    from tuner.core.spec import AUGMENTATION_KINDS
    from tuner.search.objective import spec_for_params
    from tuner.training import models
    from tuner.training.harness import fold_indices, stratified_part
    from tuner.training.train_once import train_once

    config, prepared = _prepared(args.dataset, 300, None, args.suite_dir)
    dataset = prepared.dataset
    portfolio = prepared.space.portfolio
    records = []
    for images in args.images:
        train_idx, val_idx = fold_indices(dataset.y_train, config.folds, 1, config.seed)[0]
        train_idx = stratified_part(train_idx, dataset.y_train, min(images, len(train_idx)), config.seed)
        val_idx = stratified_part(val_idx, dataset.y_train, min(len(val_idx), max(248, images // 2)), config.seed)
        x, y = np.asarray(dataset.x_train[train_idx]), dataset.y_train[train_idx]
        x_held, y_held = np.asarray(dataset.x_train[val_idx]), dataset.y_train[val_idx]
        params = {**portfolio[args.start], **({"augment_flip": args.flip} if args.flip else {})}
        traits = prepared.objective.traits
        if args.flip and args.flip != "none":  # admitted here even where the mirror test refuses it
            kinds = {*traits.augmentations, *args.flip.split("_and_")}
            traits = dataclasses.replace(traits, augmentations=tuple(k for k in AUGMENTATION_KINDS if k in kinds))
        spec = budget_recipe(spec_for_params(prepared.space, params, dataset, config.epochs, traits), args.epochs)
        for momentum in args.momenta:
            models.BATCH_NORM_MOMENTUM = momentum
            started = time.time()
            trained = train_once(spec, x, y, seed=args.seed)
            moving = trained.model.evaluate(x_held, y_held, verbose=0, batch_size=256)[1]
            _recomputed_statistics(trained.model, x, spec.train.batch_size)
            recomputed = trained.model.evaluate(x_held, y_held, verbose=0, batch_size=256)[1]
            record = {
                "dataset": args.dataset,
                "start": args.start,
                "flip": spec.model.augmentation.flip,
                "train_images": len(y),
                "steps": args.epochs * -(-len(y) // spec.train.batch_size),
                "held_out_images": len(y_held),
                "momentum": momentum,
                "moving_statistics": round(float(moving), 4),
                "recomputed_statistics": round(float(recomputed), 4),
                "train_accuracy": round(trained.history["accuracy"][-1], 4),
                "seconds": round(time.time() - started, 1),
            }
            print(json.dumps(record), flush=True)
            records.append(record)
            keras.backend.clear_session()
    return {"records": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["mirrors", "batch-norm"])
    parser.add_argument("--suite-dir", help=SUITE_HELP)
    parser.add_argument("--datasets", nargs="+", default=["fashion", "mnist-10k", "digits"])
    parser.add_argument("--dataset", default="mnist-unbalanced-32")
    parser.add_argument("--start", default="start-vgg-32-64")
    parser.add_argument("--flip", help="the start's flip, if not its own (none, horizontal, ...)")
    parser.add_argument("--images", nargs="+", type=int, default=[471])
    parser.add_argument("--momenta", nargs="+", type=float, default=[0.99, 0.9])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    results = part_mirrors(args) if args.part == "mirrors" else part_batch_norm(args)
    command = "python benchmarks/rung_judgement.py " + " ".join(sys.argv[1:] if argv is None else argv)
    name = f"rung-judgement-{args.part}"
    if args.part == "batch-norm" and (run.RESULTS / f"{name}.json").exists():
        earlier = json.loads((run.RESULTS / f"{name}.json").read_text()).get("runs", [])
    else:
        earlier = []
    entry = {"machine": run.machine_info(), "command": command, **results}
    run.write_results(name, {"runs": [*earlier, entry]} if args.part == "batch-norm" else entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
