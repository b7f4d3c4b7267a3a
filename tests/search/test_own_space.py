"""A search space of the user's own, in a .py file outside the package: `--space my_space.py` (docs/own-space.md)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_one_line_error, run_tuner

import search_spaces
from tuner.cli import build_parser
from tuner.core.errors import TunerError
from tuner.core.settings import WORKER, as_flags, flag_settings
from tuner.core.space import SearchSpace
from tuner.core.study_file import load_study_config

# A tiny CNN space of its own (one conv block, no dense layer), with parameter names no bundled space uses.
TINY_SPACE = '''
"""One conv block whose width, learning rate and batch size are tuned."""

from tuner.core.space import Space
from tuner.core.spec import ConvBlock, ModelSpec, TrainSpec, TrialSpec


def draw(trial, input_shape, num_classes, max_epochs, traits):
    block = ConvBlock(filters=trial.suggest_int("tiny_width", 8, 24, step=8), kernel_size=3)
    model = ModelSpec(input_shape=input_shape, num_classes=num_classes, blocks=(block,), padding="same")
    train = TrainSpec(
        optimizer="adam",
        learning_rate=trial.suggest_float("tiny_learning_rate", 3e-3, 1e-2, log=True),
        batch_size=trial.suggest_categorical("tiny_batch_size", [16, 32]),
        epochs=max_epochs,
    )
    return TrialSpec(model=model, train=train)


SPACE = Space(
    name="tiny",
    baselines={"tiny-16": {"tiny_width": 16, "tiny_learning_rate": 5e-3, "tiny_batch_size": 16}},
    trait_defaults={},
    draw=draw,
)
'''
TINY_PARAMS = {"tiny_width", "tiny_learning_rate", "tiny_batch_size"}


def _tiny(folder: Path, name: str = "tiny_space.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(TINY_SPACE)
    return path


def test_a_space_file_loads_its_space(tmp_path):
    space = search_spaces.get_space(str(_tiny(tmp_path)))
    assert isinstance(space, SearchSpace) and space.name == "tiny"
    spec = space.suggest(optuna.trial.FixedTrial(dict(space.baselines["tiny-16"])), (8, 8, 1), 10, 3)
    assert (spec.model.blocks[0].filters, spec.train.batch_size, spec.train.epochs) == (16, 16, 3)


def test_the_setting_is_made_absolute_and_the_study_keeps_the_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_study_config("digits", {"space": "tiny_space.py"})
    assert config.space == str(tmp_path / "tiny_space.py")
    assert config.identity()["space"] == "tiny_space.py"  # resumable from another folder with the same file
    assert load_study_config("digits").identity()["space"] == "cnn"


def test_workers_get_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["run", "digits", "--space", "tiny_space.py"])
    assert args.space == str(tmp_path / "tiny_space.py")
    flags = as_flags({"space": args.space}, WORKER)
    assert flags == ["--space", str(tmp_path / "tiny_space.py")]
    worker = build_parser().parse_args(["worker", "digits", *flags])
    assert {name: getattr(worker, name) for name, _ in flag_settings(WORKER)}["space"] == args.space


def test_a_study_file_finds_its_space_file_beside_it(tmp_path, monkeypatch):
    study = tmp_path / "project" / "mine.toml"
    _tiny(study.parent)
    study.write_text('[data]\ndataset = "digits"\n[space]\nspace = "tiny_space.py"\n')
    monkeypatch.chdir(tmp_path)
    assert load_study_config(str(study)).space == str(study.parent / "tiny_space.py")
    assert load_study_config(str(study), {"space": "cnn"}).space == "cnn"  # a flag still wins


@pytest.mark.parametrize(
    "text, fragments",
    [
        (None, ["does not exist; fix --space"]),
        ("def draw(:\n", ["fails to load (line 1): SyntaxError", "fix the file"]),
        ("import os\n\nSPACE = undefined_name\n", ["fails to load (line 3): NameError", "undefined_name", "fix the file"]),
        ("space = 1\n", ["defines no SPACE; define SPACE = Space(...)", "docs/own-space.md"]),
        ("SPACE = {'name': 'x'}\n", ["SPACE in", "is a dict, not a search space", "tuner.core.space.Space"]),
    ],
)
def test_a_bad_space_file_is_one_line_naming_the_fix(tmp_path, text, fragments):
    path = tmp_path / "bad_space.py"
    if text is not None:
        path.write_text(text)
    with pytest.raises(TunerError) as caught:
        search_spaces.get_space(str(path))
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_an_unknown_space_name_mentions_files():
    with pytest.raises(TunerError, match="unknown search space 'resnet'; choose one of cnn, cnn_cpu, or give a .py"):
        search_spaces.get_space("resnet")


def test_the_command_line_refuses_a_bad_space_file_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    missing = run_tuner("digits", "--space", "absent.py", "--storage", url, cwd=tmp_path, timeout=300)
    assert_one_line_error(missing, f"search space file {tmp_path / 'absent.py'} does not exist")
    (tmp_path / "empty_space.py").write_text("# nothing here\n")
    empty = run_tuner("digits", "--space", "empty_space.py", "--storage", url, cwd=tmp_path, timeout=300)
    assert_one_line_error(empty, "defines no SPACE")
    assert not (tmp_path / "s.db").exists() or not optuna.get_all_study_names(url)


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="digits", storage=url)


@pytest.mark.slow
def test_a_study_runs_resumes_reports_and_exports_with_a_space_file(tmp_path):
    """Trials draw the file's parameters and learn; the study resumes from another folder, report and export work."""
    _tiny(tmp_path)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    quick = ["--folds", "2", "--epochs", "1", "--storage", url, "--no-progress"]
    result = run_tuner("digits", "--space", "tiny_space.py", "--trials", "2", *quick, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = _study(url)
    assert study.user_attrs["config"]["space"] == "tiny_space.py"
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(set(t.params) == TINY_PARAMS for t in trials)
    assert trials[0].user_attrs.get("baseline") == "tiny-16"  # the file's baseline was enqueued first
    assert max(t.value for t in trials) > 0.5  # chance on digits is 0.1

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run_tuner("digits", "--space", "../tiny_space.py", "--trials", "1", *quick, cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_study(url).trials) == 3
    refused = run_tuner("digits", "--trials", "1", *quick, cwd=tmp_path)
    assert_one_line_error(refused, "was created with space='tiny_space.py' (now 'cnn')")

    report = run_tuner("report", "digits", "--storage", url, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "tiny_width" in report.stdout
    export = run_tuner("export", "digits", "--top", "1", "--storage", url, "--out", "models", cwd=elsewhere)
    assert export.returncode == 0, export.stderr
    assert len(list((elsewhere / "models").glob("trial-*.keras"))) == 1


def test_the_documented_example_is_a_working_space(tmp_path):
    """docs/own-space.md's example file loads, and its baseline builds a Keras model."""
    from tuner.training.models import build_model

    doc = (REPO / "docs" / "own-space.md").read_text()
    example = next(block.split("\n", 1)[1] for block in doc.split("```")[1::2] if block.startswith("python"))
    (tmp_path / "mine.py").write_text(example)
    space = search_spaces.get_space(str(tmp_path / "mine.py"))
    spec = space.suggest(optuna.trial.FixedTrial(dict(space.baselines["small"])), (8, 8, 1), 10, 2)
    assert not spec.model.problems()
    assert build_model(spec.model).count_params() > 0
