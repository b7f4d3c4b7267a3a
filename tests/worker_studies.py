"""Studies that worker tests share: probes enqueued as a worker would, and the check that a quota ran once each."""

from __future__ import annotations

import collections

from optuna.trial import TrialState

BASELINES = "seed000-v1,seed000-v2,seed000-v3"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def enqueue_probes(url: str, name: str, count: int, epochs: int = 1) -> None:
    """Create the study as a worker would, with `count` cheap trials waiting (seed000-v1, other learning rates).

    Sampled models can be large; waiting trials keep the test's cost known,
    and they are what workers race for: each must run exactly once.
    """
    from search_spaces import cnn
    from tuner.core.study_file import load_study_config
    from tuner.search.study import open_study

    config = load_study_config("digits", {"folds": 2, "epochs": epochs, "subset": 300})
    study = open_study(config, url, name)
    base = {**cnn.BASELINES["seed000-v1"], "epochs": epochs}
    for index in range(count):
        study.enqueue_trial({**base, "learning_rate": 0.02 + 0.01 * index}, user_attrs={"probe": index})


def assert_quota_met_once_each(trials, quota: int) -> None:
    """Exactly `quota` trials finished, none left running, every enqueued baseline and probe ran once."""
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == quota, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len({t.number for t in trials}) == len(trials)
    # an enqueued trial runs once: one finished trial per baseline or probe, enqueued once (retries aside)
    for attr in ("baseline", "probe"):
        ran = collections.Counter(t.user_attrs[attr] for t in finished if attr in t.user_attrs)
        enqueued = collections.Counter(
            t.user_attrs[attr] for t in trials if attr in t.user_attrs and "failed_trial" not in t.system_attrs
        )
        assert set(ran.values()) <= {1} and set(enqueued.values()) <= {1}, (attr, ran, enqueued)
    assert {t.user_attrs.get("baseline") for t in finished} >= set(BASELINES.split(","))
