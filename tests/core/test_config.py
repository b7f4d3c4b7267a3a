"""Study files and flags -> StudyConfig: one definition of the settings, and one-line errors for bad values."""

import argparse

import pytest

from tuner.cli import build_parser
from tuner.core.errors import TunerError
from tuner.core.settings import EXPORT, RUN, WORKER, StudyConfig, as_flags, flag_settings, settings
from tuner.core.study_file import load_study_config, study_files


def test_bundled_studies_are_found():
    assert {"fashion", "mnist", "digits"} <= set(study_files())


def test_flags_override_the_study_file():
    config = load_study_config("fashion", {"trials": 3, "folds": 2, "epochs": 1, "subset": 3000, "seed": None})
    assert (config.trials, config.folds, config.epochs, config.subset) == (3, 2, 1, 3000)
    assert config.seed == 42  # None means "not given": the file's value stays
    assert config.dataset == "fashion" and config.name == "fashion"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"trials": 0}, "trials must be a whole number >= 1"),
        ({"trials": -4}, "trials must be a whole number >= 1"),
        ({"folds": 1}, "folds must be a whole number >= 2"),
        ({"sampler": "annealing"}, "unknown sampler 'annealing'"),
        ({"pruner": "magic"}, "unknown pruner 'magic'"),
        ({"test_time_flips": "sideways"}, "unknown test time flips 'sideways'; choose one of off, auto"),
        ({"budget": "soon"}, "'soon' is not a duration"),
        ({"budget": -5}, "budget must be a positive duration"),
    ],
)
def test_bad_values_name_the_problem(overrides, fragment):
    with pytest.raises(TunerError, match=fragment):
        load_study_config("digits", overrides)


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(TunerError, match="unknown study 'cifar'.*digits, fashion.*mnist"):
        load_study_config("cifar")


def test_unreadable_and_invalid_study_files(tmp_path):
    with pytest.raises(TunerError, match="cannot read study file"):
        load_study_config(str(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\ndataset = 'fashion'\n")
    with pytest.raises(TunerError, match="is not valid TOML"):
        load_study_config(str(broken))
    typo = tmp_path / "typo.toml"
    typo.write_text("[validation]\nfolsd = 3\n")
    with pytest.raises(TunerError, match="unknown setting 'folsd'"):
        load_study_config(str(typo))


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("folds = 'three'", "folds must be a whole number >= 2, got 'three'; fix --folds or the study file"),
        ("folds = 2.5", "folds must be a whole number >= 2, got 2.5"),
        ("epochs = true", "epochs must be a whole number >= 1, got True"),
        ("subset = -1", "subset must be a whole number >= 0"),
        ("max_gap = 'wide'", "max_gap must be a finite number, got 'wide'; fix --max-gap or the study file"),
        ("objectives = 'time'", "bad objectives 'time'"),
        ("baselines = 3", "baselines must be true, false or a list of names"),
        ("image_size = 4", "image_size must be 0 (auto), a side of at least 8 pixels"),
        ("streaming = 1", 'streaming must be true, false or "auto"'),
        ("color_mode = 'sepia'", "unknown color mode 'sepia'"),
        ("augmentation = ['spin']", 'augmentation must be "auto", "off" or a list of'),
        ("budget = '1 fortnight'", "is not a duration"),
        ("timeout = 0", "timeout must be a positive number"),
        ("dataset = 5", "dataset must be text, got 5; fix the study file"),
    ],
)
def test_study_file_keys_of_the_wrong_type_or_out_of_range(tmp_path, line, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(f"[data]\n{line}\n")
    with pytest.raises(TunerError) as caught:
        load_study_config(str(path))
    assert fragment in str(caught.value)


def test_a_study_file_outside_the_package(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[data]\ndataset = 'digits'\n[validation]\nfolds = 3\nepochs = 2\n[search]\nbudget = '15m'\n")
    config = load_study_config(str(path))
    assert (config.name, config.dataset, config.folds, config.epochs, config.budget) == ("mine", "digits", 3, 2, 900)


def test_final_training_settings_are_read_and_checked(tmp_path):
    study = tmp_path / "final.toml"
    study.write_text("[data]\ndataset = 'digits'\nsubset = 500\n[export]\nfinal_subset = 0\nfinal_epochs = 12\n")
    config = load_study_config(str(study))
    assert (config.subset, config.final_subset, config.final_epochs) == (500, 0, 12)
    assert "final_subset" not in config.identity()  # the final training can change without touching the study
    assert load_study_config(str(study), {"final_budget": 1800}).final_budget == 1800
    with pytest.raises(TunerError, match="final_budget must be a positive number of seconds"):
        load_study_config(str(study), {"final_budget": -5})
    with pytest.raises(TunerError, match="final_epochs must be a whole number >= 0"):
        load_study_config(str(study), {"final_epochs": -2})


def test_every_setting_with_a_flag_is_on_the_command_line_of_its_commands():
    """One definition: each setting's flag exists on exactly the commands that take it, study-file keys likewise."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in (RUN, WORKER, EXPORT):
        flags = {option for action in subparsers[command]._actions for option in action.option_strings}
        for name, spec in settings():
            flag = f"--{name.replace('_', '-')}"
            assert (flag in flags) == (spec.flag and command in spec.commands), (command, name)
    assert {name for name, _ in settings()} == set(StudyConfig.__dataclass_fields__)


def test_worker_flags_are_written_back_from_the_same_definitions():
    """What local workers receive parses back to the same config: no setting is forgotten on the way."""
    given = {
        "objectives": ["accuracy", "time"],
        "max_gap": 0.1,
        "baselines": ["seed000-v1", "seed001"],
        "folds": 3,
        "epochs": 2,
        "subset": 500,
        "budget": 5400.0,
        "sampler": "random",
        "export_top": 2,
        "data_dir": "/data",
    }
    flags = as_flags(given, WORKER)
    assert "--export-top" not in flags  # export happens once, in the parent, after the workers
    args = build_parser().parse_args(["worker", "digits", *flags])
    parsed = {name: getattr(args, name) for name, _ in flag_settings(WORKER)}
    assert load_study_config("digits", parsed) == load_study_config("digits", {**given, "export_top": None})
    assert flags[flags.index("--budget") + 1] == "1h30m"


def test_identity_is_what_a_resumed_study_must_keep():
    identity = load_study_config("digits").identity()
    assert {"dataset", "subset", "space", "folds", "epochs", "seed", "objectives", "max_gap"} <= set(identity)
    assert not {"trials", "timeout", "budget", "sampler", "pruner", "export_top"} & set(identity)


def test_deterministic_tracking_and_latency_settings_reach_workers(tmp_path, monkeypatch):
    """--deterministic is a bare flag; 'local' becomes one absolute MLflow store, so workers elsewhere share it."""
    monkeypatch.chdir(tmp_path)
    config = load_study_config(
        "digits", {"deterministic": True, "mlflow_tracking_uri": "local", "objectives": "accuracy,latency"}
    )
    assert config.deterministic is True and config.objectives == ["accuracy", "latency"]
    assert config.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    flags = as_flags({"deterministic": True, "mlflow_tracking_uri": config.mlflow_tracking_uri}, WORKER)
    assert flags == ["--deterministic", "--mlflow-tracking-uri", config.mlflow_tracking_uri]
    args = build_parser().parse_args(["worker", "digits", *flags])
    assert (args.deterministic, args.mlflow_tracking_uri) == (True, config.mlflow_tracking_uri)
    assert load_study_config("digits").deterministic is False  # off unless asked: it costs speed
    assert "deterministic" not in load_study_config("digits").identity()


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"objectives": "accuracy,speed"}, "use accuracy, accuracy,time, accuracy,params or accuracy,latency"),
        ({"objectives": "latency"}, "bad objectives 'latency'"),
        ({"deterministic": "yes"}, "deterministic must be true or false"),
        ({"mlflow_tracking_uri": ""}, "must be a tracking URI or 'local'"),
    ],
)
def test_bad_latency_determinism_and_tracking_values(overrides, fragment):
    with pytest.raises(TunerError, match=fragment):
        load_study_config("digits", overrides)
