"""The one trial loop: claim -> judge -> tell, until the strategy says done; in a run and in every worker alike.

A claim is made under the study lock (tuner.distributed.shared_study), where
the strategy says what runs next. The strategy judges the trial; its line is
printed (tuner.run.printer). A pruned trial is PRUNED; an error fails the
trial, with one line, and the loop goes on (MAX_CONSECUTIVE_ERRORS in a row
end it); a database outage past the study's limit ends the loop with the
trial left RUNNING for the heartbeat to fail and re-queue. Ctrl-C or SIGTERM
fail the trial in flight (a worker sharing a study also re-queues it for
another) and propagate.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner.core import interrupt
from tuner.core.errors import TunerError
from tuner.distributed.shared_study import SharedStudy
from tuner.run.printer import TrialPrinter
from tuner.run.tracking import TrialCallback
from tuner.search.strategy import Job, SearchStrategy
from tuner.storage.outages import StorageOutage, reason

MAX_CONSECUTIVE_ERRORS = 3
WAIT_POLL = 5  # seconds between looks at the study while the last slots run elsewhere


def _judge(
    shared: SharedStudy, strategy: SearchStrategy, trial: optuna.Trial, printer: TrialPrinter
) -> tuple[Any, TrialState]:
    """The strategy's value for `trial` and its state; an outage past the limit is not the trial's failure."""
    try:
        return strategy(trial), TrialState.COMPLETE
    except optuna.TrialPruned:
        return None, TrialState.PRUNED
    except StorageOutage:
        raise
    except Exception as error:
        printer.say(f"trial {trial.number} failed: {type(error).__name__}: {reason(error, shared.url)}")
        return None, TrialState.FAIL


def run_one(
    shared: SharedStudy,
    strategy: SearchStrategy,
    trial: optuna.Trial,
    printer: TrialPrinter,
    requeue: bool,
    callbacks: Sequence[TrialCallback] = (),
) -> TrialState:
    """Judge one claimed trial with heartbeats, tell its result, print its line, hand it to the `callbacks`."""
    started = time.time()
    try:
        with shared.beating(trial):
            value, state = _judge(shared, strategy, trial, printer)
    except KeyboardInterrupt:
        if requeue:
            shared.give_back(trial)
            printer.say(f"trial {trial.number} interrupted: marked FAIL and re-queued for another worker")
        else:
            shared.tell(trial, None, TrialState.FAIL)
        raise
    frozen = shared.tell(trial, value, state)
    if frozen is None:
        printer.say(f"trial {trial.number} was failed as stale by another worker; its retry will count instead")
        return TrialState.FAIL
    printer.trial(shared.study, frozen, time.time() - started)
    for callback in callbacks:  # (experiment tracking): a failure to log costs a line, not the study
        try:
            callback(shared.study, frozen)
        except Exception as error:
            printer.say(f"trial {trial.number} was not logged: {type(error).__name__}: {error}")
    return state


def run_trials(
    shared: SharedStudy,
    strategy: SearchStrategy,
    printer: TrialPrinter,
    requeue: bool = False,
    callbacks: Sequence[TrialCallback] = (),
) -> None:
    """Run the strategy's trials until it says done (see the module's docstring); `callbacks` get each finished trial."""
    errors = 0
    while True:
        interrupt.check()
        claimed = shared.claim(strategy.next_job)
        if claimed is Job.DONE:
            return
        if claimed is Job.WAIT:  # the last slots run elsewhere: wait, reaping dead ones
            time.sleep(min(shared.heartbeat, WAIT_POLL))
            continue
        assert isinstance(claimed, optuna.Trial)
        state = run_one(shared, strategy, claimed, printer, requeue, callbacks)
        gc.collect()  # a trained model's graph and buffers go before the next is built
        errors = errors + 1 if state == TrialState.FAIL else 0
        if errors >= MAX_CONSECUTIVE_ERRORS:
            raise TunerError(f"{errors} trials in a row failed with errors; see the messages above and fix the cause")
