"""KerasTuner's Hyperband as a peer of `--budget`: `python benchmarks/peer.py --dataset SET --budget 15m --study-seed S --work DIR`.

The tuner's claim is that `--budget` beats what a user would otherwise do in the same time; a user with
KerasTuner would run its Hyperband. This module runs that peer on the same terms as a rehearsal
(`benchmarks/budget.py rehearse`), so that `budget.py compare --peer` puts both in one table:

- the same data: the rehearsal copy that `rehearse` writes for the data set and study seed (a stratified
  1/K of the training split held out as the copy's test split, by `budget._rehearsal_data`), loaded through
  `tuner.data.load_study_data` as the tuner loads it (pixels in [0, 1]). The source's test split is never read;
  the hold-out is read once, to score the final model.
- an equivalent space: `CnnCpuHyperModel` declares the knobs and ranges of `search_spaces/cnn_cpu.py` as
  KerasTuner hyperparameters (two 3x3 conv blocks of 16-48 and 32-96 filters in steps of 16, one or two
  convolutions each, block dropout 0-0.4; batch norm on or off; 64-256 dense units in steps of 64; head
  dropout 0-0.5; adam, adamw or nadam; learning rate 3e-4 to 3e-3, log; batch size 64, 128 or 256) and builds
  the model with the tuner's own builder (`tuner.training.models`), so that equal knobs give equal networks
  trained at the same speed. What differs is KerasTuner's way: a constant learning rate (Hyperband resumes
  trials part-way, which a schedule to zero over a fixed length does not fit), no class weights (cnn_cpu
  tunes them on unbalanced data only), and Hyperband's own max_epochs (the study's `epochs`, 10 for every
  suite set) and factor (3), iterated until the time is spent. The tuner's budget run itself searches the
  wider default space (`cnn`) with its portfolio starts; the peer gets the narrow space, which suits a
  search that draws at random.
- the same wall clock, counted from the start of `run_peer` (the script's own start when run as a script,
  imports included), so writing the rehearsal copy is counted too, which the tuner's rehearsal does not
  count: the peer is timed, if anything, more strictly. KerasTuner has no time limit: `DeadlineHyperband`'s
  oracle creates no trial after the search's deadline, and a callback stops the trial that runs then at its
  next batch. The search gets the first two thirds of the budget (the tuner spends roughly the last third on
  final training); Hyperband validates on a stratified 20% of the copy's training images. Then the best
  trial's hyperparameters are trained afresh on all of the copy's training images for as many whole epochs
  as the time left allows at the speed that trial showed (at most the tuner's own cap on final epochs, 40,
  and at least the epochs at which that trial's validation accuracy peaked), as a user with the rest of
  the clock would; a callback stops it at the end of the budget less a reserve for scoring the hold-out.

Writes WORK/figures.json (the keys `budget.compare_table` reads: dataset, arm, study_seed,
winner_holdout_accuracy, wall_vs_budget) and WORK/kerastuner/ (KerasTuner's own trial files).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

STARTED = time.time()  # when run as a script, the clock starts here, before Keras' import, which it counts

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402
from keras_tuner.engine.trial import TrialStatus  # noqa: E402

from benchmarks.budget import PEER_ARM, duration_argument  # noqa: E402
from tuner.budget.plan import DEFAULT_POLICY  # noqa: E402
from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec  # noqa: E402
from tuner.training.models import build_model, compile_model  # noqa: E402

SEARCH_SHARE = 2 / 3  # of the budget, for Hyperband's search; the rest for the final training and the hold-out
VALIDATION_SHARE = 0.2  # of the copy's training images, stratified: Hyperband's val_accuracy
HYPERBAND_FACTOR = 3  # KerasTuner's default


def _reserve(budget: float) -> float:
    """Seconds kept at the end of the budget for scoring the hold-out and writing the figures."""
    return max(3.0, 0.03 * budget)


class CnnCpuHyperModel(keras_tuner.HyperModel):
    """search_spaces/cnn_cpu.py's knobs and ranges as KerasTuner hyperparameters; the tuner's model builder."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, train_images: int) -> None:
        super().__init__(name="cnn_cpu")
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.train_images = train_images  # for the compiled steps per call, as the tuner compiles

    def build(self, hp):
        blocks = []
        for index, (low, high) in enumerate(((16, 48), (32, 96))):
            dropout = hp.Float(f"block_dropout_{index}", 0.0, 0.4)
            blocks.append(
                ConvBlock(
                    filters=hp.Int(f"filters_{index}", low, high, step=16),
                    kernel_size=3,
                    convs=hp.Int(f"convs_{index}", 1, 2),
                    pooling="max",
                    dropout=dropout,
                )
            )
        spec = ModelSpec(
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            blocks=tuple(blocks),
            padding="same",
            activation="relu",
            kernel_initializer="he_uniform",
            batch_norm=hp.Boolean("batch_norm"),
            dense_units=(hp.Int("dense_units", 64, 256, step=64),),
            head_dropout=hp.Float("head_dropout", 0.0, 0.5),
        )
        train = TrainSpec(
            optimizer=hp.Choice("optimizer", ["adam", "adamw", "nadam"]),
            learning_rate=hp.Float("learning_rate", 3e-4, 3e-3, sampling="log"),
            lr_schedule="none",
            batch_size=hp.Choice("batch_size", [64, 128, 256]),
        )
        model = build_model(spec)
        compile_model(model, train, self.train_images)
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Keras' fit with the trial's batch size: a hyperparameter that `build` cannot apply."""
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)


class StopAt(keras.callbacks.Callback):
    """Stops training at the first batch that ends after `deadline` (time.time() seconds)."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.stopped = False

    def on_train_batch_end(self, batch, logs=None):
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped = True


class DeadlineHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """Hyperband's oracle that ends the search, as an exhausted oracle does, once `deadline` has passed."""

    def __init__(self, deadline: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    def populate_space(self, trial_id):
        if time.time() >= self.deadline:
            return {"status": TrialStatus.STOPPED}
        return super().populate_space(trial_id)


class DeadlineHyperband(keras_tuner.Hyperband):
    """KerasTuner's Hyperband tuner on a DeadlineHyperbandOracle; it keeps each trial's epoch times."""

    def __init__(self, hypermodel, deadline: float, max_epochs: int, seed: int, directory: str) -> None:
        oracle = DeadlineHyperbandOracle(
            deadline,
            objective="val_accuracy",
            max_epochs=max_epochs,
            factor=HYPERBAND_FACTOR,
            hyperband_iterations=None,  # iterate until the deadline
            seed=seed,
        )
        # Hyperband's own __init__ makes a plain HyperbandOracle; its trial logic (resuming from a past trial's
        # weights for more epochs) is kept, on this oracle.
        keras_tuner.Tuner.__init__(
            self, oracle=oracle, hypermodel=hypermodel, directory=directory, project_name="hyperband", overwrite=True
        )
        self.epoch_seconds: dict[str, list[float]] = {}
        self._epoch_started = 0.0

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        """Nothing: the peer passes no TensorBoard callback for KerasTuner to wire up.

        KerasTuner 1.4 imports TensorBoard here on the TensorFlow backend, for every trial, whether or not a
        TensorBoard callback is given; TensorFlow 2.21 no longer installs TensorBoard, and the peer does not need it.
        """

    def on_epoch_begin(self, trial, model, epoch, logs=None):
        self._epoch_started = time.time()

    def on_epoch_end(self, trial, model, epoch, logs=None):
        self.epoch_seconds.setdefault(trial.trial_id, []).append(time.time() - self._epoch_started)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        done = self.oracle.get_trial(trial.trial_id)
        values = trial.hyperparameters.values
        print(
            f"peer: trial {trial.trial_id} ({done.status}), epochs {values.get('tuner/initial_epoch')}-"
            f"{values.get('tuner/epochs')}: val_accuracy {done.score}",
            flush=True,
        )


def _load(config):
    """The copy's training split and its hold-out (the copy's test split), as the tuner loads them."""
    from tuner.data import load_study_data

    dataset = load_study_data(config)
    if not isinstance(dataset.x_train, np.ndarray):
        raise SystemExit(f"peer: {config.dataset} streams its images from disk; the peer trains on arrays in memory")
    return dataset


def _final_epochs(wanted: int, seconds: list[float], scale: float, left: float) -> int:
    """Whole epochs, at most `wanted`, that fit in `left` seconds at a trial's speed (its first epoch pays the compile)."""
    first = seconds[0] * scale
    steady = (statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]) * scale
    return max(1, min(wanted, 1 + math.floor((left - first) / max(steady, 1e-9))))


def run_peer(
    dataset: str,
    budget: float,
    seed: int,
    work: Path,
    suite_dir: str | None,
    data_dir: str | None = None,
    started: float | None = None,
) -> dict:
    """KerasTuner's Hyperband on the rehearsal copy of `dataset` for `seed`, in `budget` seconds from `started`.

    Returns the figures it writes to work/figures.json.
    """
    from sklearn.model_selection import train_test_split

    from benchmarks.budget import _config, _rehearsal_data, _source
    from benchmarks.run import machine_info

    started = time.time() if started is None else started
    work = Path(work).resolve()
    if work.exists() and any(path.name != "run.log" for path in work.iterdir()):  # compare logs the run there
        raise SystemExit(f"peer: {work} is not empty; give an empty or new work folder")
    study, overrides = _source(dataset, data_dir, suite_dir)
    overrides["seed"] = seed  # as part_rehearse: the same seed, the same hold-out
    data, rehearsal = _rehearsal_data(study, overrides, work / "data")
    config = _config(study, rehearsal)
    loaded = _load(config)
    x, y = loaded.x_train, loaded.y_train
    search_rows, val_rows = train_test_split(np.arange(len(y)), test_size=VALIDATION_SHARE, stratify=y, random_state=seed)
    keras.utils.set_random_seed(seed)
    search_deadline = started + SEARCH_SHARE * budget
    end = started + budget - _reserve(budget)
    print(
        f"peer: {data['train_images']} training images ({len(search_rows)} searched, {len(val_rows)} validating), "
        f"{data['holdout_images']} held out; Hyperband until {search_deadline - started:.0f}s of {budget:.0f}s",
        flush=True,
    )
    hypermodel = CnnCpuHyperModel(loaded.input_shape, loaded.num_classes, len(search_rows))
    tuner = DeadlineHyperband(hypermodel, search_deadline, config.epochs, seed, str(work / "kerastuner"))
    tuner.search(
        x[search_rows],
        y[search_rows],
        validation_data=(x[val_rows], y[val_rows]),
        callbacks=[StopAt(search_deadline)],
        verbose=0,
    )
    searched = time.time()
    trials = [t for t in tuner.oracle.trials.values() if t.status == TrialStatus.COMPLETED]
    if not trials:
        raise SystemExit(f"peer: no Hyperband trial finished in {searched - started:.0f}s; give a longer budget")
    best = tuner.oracle.get_best_trials(1)[0]
    values = dict(best.hyperparameters.values)
    best_epochs = int(values.get("tuner/initial_epoch", 0)) + int(best.best_step) + 1
    hyperparameters = {k: v for k, v in values.items() if not k.startswith("tuner/")}

    keras.utils.set_random_seed(seed)
    model = CnnCpuHyperModel(loaded.input_shape, loaded.num_classes, len(y)).build(best.hyperparameters.copy())
    scale = len(y) / len(search_rows)  # all of the copy's training images, against the searched part
    wanted = max(best_epochs, DEFAULT_POLICY.max_final_epochs)  # the time left is the user's: use it, up to the tuner's cap
    epochs = _final_epochs(wanted, tuner.epoch_seconds[best.trial_id], scale, end - time.time())
    stop = StopAt(end)
    history = model.fit(x, y, batch_size=hyperparameters["batch_size"], epochs=epochs, callbacks=[stop], verbose=0)
    trained = time.time()
    held_x, held_y = loaded.test_split()
    _, accuracy = model.evaluate(held_x, held_y, batch_size=256, verbose=0)
    wall = time.time() - started
    figures = {
        "machine": machine_info(),
        "dataset": dataset,
        "data": data,
        "budget": budget,
        "arm": PEER_ARM,
        "study_seed": seed,
        "settings": (
            f"Hyperband max_epochs {config.epochs}, factor {HYPERBAND_FACTOR}, search share {SEARCH_SHARE:.3f}, "
            f"validation share {VALIDATION_SHARE}"
        ),
        "wall_seconds": wall,
        "wall_vs_budget": wall / budget,
        "search_seconds": searched - started,
        "final_seconds": trained - searched,
        "trials": len(trials),
        "best_trial": best.trial_id,
        "best_val_accuracy": best.score,
        "best_hyperparameters": hyperparameters,
        "best_epochs": best_epochs,
        "winner_final_epochs": len(history.history["loss"]),
        "final_cut_at_deadline": stop.stopped,
        "winner_holdout_accuracy": float(accuracy),
        "command": (
            f"python benchmarks/peer.py --dataset {dataset} --budget {budget:g} --study-seed {seed} --work {work}"
            + (f" --suite-dir {suite_dir}" if suite_dir else "")
            + (f" --data-dir {data_dir}" if data_dir else "")
        ),
    }
    (work / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "machine"}, indent=2), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    from benchmarks.suite import SUITE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", default="digits", help=f"a suite set ({', '.join(SUITE)}), a study, an .npz or a folder"
    )
    parser.add_argument("--budget", type=duration_argument, required=True, help="a duration: 900, 45s, 15m, 1h")
    parser.add_argument("--study-seed", type=int, required=True, help="the study's seed: the rehearsal's hold-out")
    parser.add_argument("--work", required=True, help="an empty or new folder (but for a run.log)")
    parser.add_argument("--suite-dir", help="the folder 'benchmarks/suite.py make --out DIR' wrote the made sets to")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    run_peer(
        args.dataset,
        args.budget,
        args.study_seed,
        Path(args.work),
        args.suite_dir,
        args.data_dir,
        started=STARTED if argv is None else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
