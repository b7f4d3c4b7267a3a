"""The trial-count strategy: N trials of the K-fold harness, with Optuna's sampler and pruner (the seeds' studies).

In one process a run judges `trials` more trials (or stops at `timeout`);
a resumed study draws with a new seed, so it never repeats the first run's
parameters. Shared by workers, the count is the study's trial quota, stored
on the study by the first worker (user attribute `trial_quota`): a slot is
claimed under the study lock only while finished + running trials are below
it, so N workers asked for 40 trials run 40 in all. The space's seed
baselines are enqueued once, first. A study whose trials would take many
hours on this machine says so first and names --budget.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.core.errors import TunerError
from tuner.count.display import CountDisplay
from tuner.data.dataset import DataSet
from tuner.results.export_study import export_study
from tuner.search.samplers import make_pruner, make_sampler
from tuner.search.strategy import Display, Finals, Job, searched_by
from tuner.search.study import Prepared, check_folds, enqueue_baselines, record_data_notes
from tuner.storage.storages import artifact_store

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
QUOTA_ATTR = "trial_quota"  # the study's shared trial count
OLD_QUOTA_ATTR = "budget"  # where studies made before the rename keep it
OPTIMISTIC_SECONDS_PER_IMAGE = 2e-5  # faster than any CPU here: below this estimate no calibration is worth it
LONG_STUDY_SECONDS = 2 * 3600  # "many hours": say so above this


def finished_and_running(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study; finished = COMPLETE or PRUNED."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    finished = sum(t.state in FINISHED for t in trials)
    return finished, len(trials) - finished


def settle_trial_quota(study: optuna.Study, requested: int | None, default: int) -> int:
    """The study's shared trial quota: stored by the first worker, the same for every later one."""
    stored = study.user_attrs.get(QUOTA_ATTR, study.user_attrs.get(OLD_QUOTA_ATTR))
    if stored is None:
        quota = requested or default
        study.set_user_attr(QUOTA_ATTR, quota)
        return quota
    if requested is not None and requested != stored:
        raise TunerError(
            f"study {study.study_name!r} has a quota of {stored} trials shared by its workers; "
            f"pass --trials {stored} or leave --trials out to join it"
        )
    return int(stored)


def estimated_seconds(prepared: Prepared, seconds_per_image: float) -> float:
    """Training seconds of `config.trials` whole trials (no pruning) at `seconds_per_image`."""
    config = prepared.config
    per_fold = len(prepared.dataset.y_train) * (config.folds - 1) / config.folds
    return config.trials * config.folds * config.repeats * config.epochs * per_fold * seconds_per_image


def warn_if_long(prepared: Prepared) -> float | None:
    """Calibrate and print one line when the study could take more than LONG_STUDY_SECONDS; returns the estimate."""
    if estimated_seconds(prepared, OPTIMISTIC_SECONDS_PER_IMAGE) <= LONG_STUDY_SECONDS:
        return None
    from tuner.search.typical_speed import typical_seconds_per_image
    from tuner.training.calibration import calibrate_dataset

    speed, _ = calibrate_dataset(prepared.dataset)
    typical = typical_seconds_per_image(prepared, speed, prepared.config.seed)
    seconds = estimated_seconds(prepared, typical)
    if seconds > LONG_STUDY_SECONDS:
        config = prepared.config
        print(
            f"tuner: {config.trials} trials x {config.folds * config.repeats} folds x {config.epochs} epochs could take "
            f"about {seconds / 3600:.0f} hours on this machine (a typical configuration of the {config.space!r} space "
            f"trains at {typical * 1000:.2f} ms per image; pruning stops some trials early); for the best model in a "
            "fixed time, use --budget, e.g. --budget 1h",
            file=sys.stderr,
            flush=True,
        )
    return seconds


class CountStrategy:
    """A trial count (see the module's docstring).

    `shared`: the count is the study's quota, shared with other workers
    (`tuner worker`, `--workers N`); else this process runs `trials` more.
    `export_dataset`: what the export retrains and tests on, when the data
    was given rather than named (else the config's, with its final_subset).
    """

    name = "trial count"

    def __init__(self, prepared: Prepared, shared: bool = False, export_dataset: DataSet | None = None):
        check_folds(prepared.config.folds, prepared.dataset)
        self.prepared, self.config, self.shared = prepared, prepared.config, shared
        self.export_dataset = export_dataset  # the data the export retrains on, when not loaded by the config's name
        self.quota: int | None = None
        self.claimed = 0
        self.started: float | None = None  # when this process asked for its first job: --timeout counts from it
        self.objective = prepared.objective

    def pruner(self) -> optuna.pruners.BasePruner:
        return make_pruner(self.config)

    def check_resumable(self, study: optuna.Study) -> None:
        if searched_by(study) not in (None, self.name):
            raise TunerError(
                f"study {study.study_name!r} is a budget study (its trials judge rungs of a plan); continue it "
                "with --budget DURATION, or use a new --study-name"
            )

    def display(self, enabled: bool) -> Display:
        return CountDisplay(self.config.trials, self.config.name, enabled)

    def begin(self, study: optuna.Study, display: Display) -> None:
        warn_if_long(self.prepared)
        already_run = len(study.get_trials(deepcopy=False))
        if already_run and not self.shared:  # a resumed study must not draw the first run's parameters again
            study.sampler = make_sampler(self.config, seed_offset=already_run)
        record_data_notes(study, self.prepared.dataset)

    def join(self, study: optuna.Study, requested_trials: int | None) -> None:
        if self.shared:
            self.quota = settle_trial_quota(study, requested_trials, self.config.trials)
        enqueue_baselines(study, self.config, self.prepared.dataset, self.prepared.space)

    def next_job(self, study: optuna.Study) -> Job:
        if self.started is None:
            self.started = time.time()
        if self.config.timeout and time.time() - self.started > self.config.timeout:
            return Job.DONE
        if self.quota is None:
            if self.claimed >= self.config.trials:
                return Job.DONE
            self.claimed += 1
            return Job.RUN
        finished, running = finished_and_running(study)
        if finished >= self.quota:
            return Job.DONE
        return Job.WAIT if finished + running >= self.quota else Job.RUN

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        return self.objective(trial)

    def label(self, trial: FrozenTrial) -> str:
        return ""

    def final_training(self, study: optuna.Study, display: Display, storage_url: str | None, out: Path) -> Finals | None:
        """The `export_top` best trials retrained by the trial's own recipe, tested once (none when 0)."""
        top = self.config.export_top
        if not top:
            return None
        exported = export_study(study, self.config, artifact_store(storage_url), top, out, dataset=self.export_dataset)
        return Finals(exported.models, exported.ensemble, exported.skipped_plots, out)

    def done_line(self, study: optuna.Study) -> str:
        finished, _ = finished_and_running(study)
        if self.config.timeout and self.started and time.time() - self.started > self.config.timeout:
            return f"--timeout {self.config.timeout:g}s reached: no more trials from this worker ({finished} finished)"
        return f"trial quota met: {finished} of {self.quota} trials finished"

    def finish(self, study: optuna.Study, finals: Finals | None) -> list[str]:
        return []
