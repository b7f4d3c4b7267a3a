"""Plug-ins by name: samplers, pruners and built-in data sets come from registries; unknown names get one line."""

from __future__ import annotations

import importlib.util
import sys

import optuna
import pytest
from conftest import assert_one_line_error, run_tuner

from tuner.core.errors import TunerError
from tuner.core.registry import Registry
from tuner.core.settings import PRUNERS, SAMPLERS, StudyConfig
from tuner.core.study_file import load_study_config
from tuner.data import load_dataset
from tuner.data.builtin import DATASETS
from tuner.search.samplers import PRUNER_REGISTRY, SAMPLER_REGISTRY, make_pruner, make_sampler

SAMPLER_CLASSES = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
PRUNER_CLASSES = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
    "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "none": optuna.pruners.NopPruner,
}


def test_the_registries_hold_exactly_the_names_the_settings_accept():
    assert SAMPLER_REGISTRY.names() == SAMPLERS
    assert PRUNER_REGISTRY.names() == PRUNERS
    assert set(DATASETS) == {"fashion", "mnist", "digits"}


def test_the_cmaes_sampler_without_its_package_is_refused_before_the_first_draw(monkeypatch):
    """Optuna imports cmaes only at the first draw, where every trial would fail: the tuner refuses it up front."""
    monkeypatch.setitem(sys.modules, "cmaes", None)  # as where the package is not installed
    assert importlib.util.find_spec("cmaes") is None
    with pytest.raises(TunerError, match="the cmaes sampler needs the cmaes package; run 'pip install cmaes'"):
        make_sampler(StudyConfig(sampler="cmaes"))


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_builds_and_draws(name):
    """Each sampler draws past its first trials in a two-dimensional space (CMA-ES leaves one-dimensional ones to random)."""
    sampler = make_sampler(StudyConfig(sampler=name, seed=3), seed_offset=1)
    assert type(sampler) is SAMPLER_CLASSES[name]
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: trial.suggest_float("x", -1.0, 1.0) ** 2 + trial.suggest_float("y", -1.0, 1.0), n_trials=5)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_builds_by_its_name(name):
    assert type(make_pruner(StudyConfig(pruner=name, epochs=6))) is PRUNER_CLASSES[name]


def test_the_seed_offset_changes_the_draws():
    def first_draws(offset: int) -> list[float]:
        study = optuna.create_study(sampler=make_sampler(StudyConfig(sampler="random"), seed_offset=offset))
        study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
        return [t.params["x"] for t in study.trials]

    assert first_draws(0) == first_draws(0)
    assert first_draws(0) != first_draws(1)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"sampler": "annealing"}, "unknown sampler 'annealing'; choose one of tpe, random, gp, cmaes, nsga2"),
        ({"pruner": "magic"}, "unknown pruner 'magic'; choose one of hyperband, median, successive-halving, wilcoxon, none"),
    ],
)
def test_unknown_sampler_or_pruner_lists_the_choices(overrides, fragment):
    with pytest.raises(TunerError) as caught:
        load_study_config("digits", overrides)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_data_set_lists_the_built_in_ones_and_the_other_forms():
    with pytest.raises(TunerError) as caught:
        load_dataset("cifar")
    assert str(caught.value) == (
        "unknown data set 'cifar'; choose one of fashion, mnist, digits or give an .npz path or folder:PATH"
    )


def test_a_registered_data_set_loads_by_its_name():
    assert DATASETS.get("digits")(None).name == "digits"
    assert load_dataset("digits", subset=100).y_train.shape == (100,)


def test_a_registry_refuses_undeclared_and_twice_registered_names_and_names_the_missing():
    registry: Registry[int] = Registry("widget", ("a", "b"))
    registry.register("a")(1)
    with pytest.raises(ValueError, match="widget 'c' is not declared"):
        registry.register("c")(3)
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        registry.register("a")(2)
    with pytest.raises(ValueError, match="widget b declared but not registered"):
        registry.complete()
    registry.register("b")(2)
    assert registry.complete().names() == ("a", "b") and registry.get("b") == 2
    with pytest.raises(TunerError, match="unknown widget 'z'; choose one of a, b$"):
        registry.get("z")


def test_the_command_line_names_an_unknown_sampler_in_one_line(tmp_path):
    result = run_tuner("digits", "--sampler", "annealing", "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert_one_line_error(result, "unknown sampler 'annealing'; choose one of tpe, random, gp, cmaes, nsga2")
    assert not (tmp_path / "s.db").exists()
