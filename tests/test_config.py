"""Study files and flags -> StudyConfig, and the one-line errors for bad input."""

import pytest

from tuner.config import load_study_config, study_files
from tuner.errors import TunerError


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


def test_a_study_file_outside_the_package(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[data]\ndataset = 'digits'\n[validation]\nfolds = 3\nepochs = 2\n")
    config = load_study_config(str(path))
    assert (config.name, config.dataset, config.folds, config.epochs) == ("mine", "digits", 3, 2)


def test_final_training_settings_are_read_and_checked(tmp_path):
    study = tmp_path / "final.toml"
    study.write_text("[data]\ndataset = 'digits'\nsubset = 500\n[export]\nfinal_subset = 0\nfinal_epochs = 12\n")
    config = load_study_config(str(study))
    assert (config.subset, config.final_subset, config.final_epochs) == (500, 0, 12)
    assert "final_subset" not in config.comparable()  # the final training can change without touching the study
    assert load_study_config(str(study), {"final_budget": 1800}).final_budget == 1800
    with pytest.raises(TunerError, match="final_budget must be a positive number of seconds"):
        load_study_config(str(study), {"final_budget": -5})
    with pytest.raises(TunerError, match="final_epochs must be a whole number >= 0"):
        load_study_config(str(study), {"final_epochs": -2})
