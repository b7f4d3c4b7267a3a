"""The README's table of bad inputs: each row gives one line naming the problem and the fix, exit 2,
and leaves the existing study (its trials, or its file's bytes) exactly as it was."""

from __future__ import annotations

import shutil

import numpy as np
import optuna
import pytest
from conftest import assert_one_line_error, run_tuner
from PIL import Image

pytestmark = pytest.mark.slow

QUICK = ["--trials", "1", "--folds", "2", "--epochs", "1", "--subset", "300", "--baselines", "seed000-v1", "--no-progress"]


def _trials(url: str, name: str = "digits") -> list:
    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.state, t.value, t.params) for t in study.get_trials(deepcopy=False)]


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype="uint8"), mode="L").save(folder / name)


@pytest.fixture(scope="module")
def bad_input_study(tmp_path_factory):
    """A real digits study in SQLite and a copy of it as a journal file, and the bad inputs beside them."""
    folder = tmp_path_factory.mktemp("bad-input")
    url = f"sqlite:///{folder / 'study.db'}"
    result = run_tuner("digits", *QUICK, "--storage", url, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stderr
    journal = folder / "study.log"
    copy = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.copy_study(from_study_name="digits", from_storage=url, to_storage=copy)
    (folder / "unknown-data-set.toml").write_text("[data]\ndataset = 'cifar'\n")
    (folder / "wrong-type.toml").write_text('[search]\ntrials = "ten"\n')
    (folder / "out-of-range.toml").write_text("[search]\nfolds = 1\n")
    (folder / "odd-name.toml").write_text('name = "my study/2"\n')
    _images(folder / "one-class" / "cats", [f"{i}.png" for i in range(4)])
    (folder / "no-images" / "cats").mkdir(parents=True)
    (folder / "no-images" / "dogs").mkdir(parents=True)
    for name in ("cats", "dogs"):
        (folder / "not-images" / name).mkdir(parents=True)
        (folder / "not-images" / name / "notes.txt").write_text("not an image\n")
        (folder / "not-images" / name / "fake.png").write_text("not a PNG either\n")
    return {"folder": folder, "url": url, "journal": journal}


ROWS = {
    # name: (arguments, with {url}, {folder}, {journal}; the fragment the one line must hold)
    "study file key of the wrong type": (["{folder}/wrong-type.toml", "--storage", "{url}"], "trials must be a whole"),
    "study file key out of range": (["{folder}/out-of-range.toml", "--storage", "{url}"], "folds must be a whole"),
    "an unknown study": (["cifar"], "unknown study 'cifar'"),
    "a study file naming an unknown data set": (
        ["{folder}/unknown-data-set.toml", "--storage", "{url}"],
        "unknown data set 'cifar'",
    ),
    "a study file that does not exist": (["{folder}/absent.toml"], "cannot read study file"),
    "flag out of range": (["digits", "--trials", "0", "--storage", "{url}"], "trials must be a whole number >= 1"),
    "a negative flag": (["digits", "--trials", "-3", "--storage", "{url}"], "trials must be a whole number >= 1"),
    "a flag that is not a number": (["digits", "--trials", "many", "--storage", "{url}"], "'many' is not a whole number"),
    "a setting the study was created without": (
        ["digits", "--epochs", "7", "--folds", "2", "--subset", "300", "--storage", "{url}"],
        "was created with epochs=1 (now 7)",
    ),
    "a report of a study that does not exist": (
        ["report", "digits", "--storage", "{url}", "--study-name", "nope"],
        "no study named 'nope'",
    ),
    "more folds than the smallest class has images": (
        ["digits", "--folds", "500", "--storage", "{url}"],
        "--folds 500 is more than class",
    ),
    "a folder with one class": (["folder:{folder}/one-class", "--storage", "{url}"], "has 1 class folder(s)"),
    "a folder with no images": (["folder:{folder}/no-images", "--storage", "{url}"], "0 readable image(s)"),
    "a folder of non-image files": (["folder:{folder}/not-images", "--storage", "{url}"], "0 readable image(s)"),
    "a truncated journal file": (["digits", *QUICK, "--storage", "journal:///{journal}"], "is damaged at its last line"),
    "a corrupt SQLite file": (["digits", *QUICK, "--storage", "sqlite:///{folder}/study.db"], "is damaged"),
    "a study name with odd characters": (
        ["digits", "--study-name", "my study/2", "--storage", "{url}"],
        "study name 'my study/2' is not usable",
    ),
    "a study file's name with odd characters": (["{folder}/odd-name.toml", "--storage", "{url}"], "fix the study file"),
    "a storage that is not a URL": (["digits", "--storage", "not-a-url"], "is not a URL"),
    "an unknown storage kind": (["digits", "--storage", "nosuchdb://x/y"], "storage kind 'nosuchdb'"),
    "a storage URL with a typo": (["digits", "--storage", "postgressql://postgres:pw@127.0.0.1/test"], "(a typo?)"),
    "an SQLite URL with two slashes": (["digits", "--storage", "sqlite://study.db"], "three slashes"),
    "a storage folder that does not exist": (["digits", "--storage", "sqlite:///{folder}/absent/s.db"], "does not exist"),
    "an unreachable host": (["digits", "--storage", "postgresql://postgres:pw@127.0.0.1:1/test"], "cannot open storage"),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input_is_one_line_exit_2_and_the_study_is_unchanged(bad_input_study, row, tmp_path):
    folder, url, journal = bad_input_study["folder"], bad_input_study["url"], bad_input_study["journal"]
    arguments, fragment = ROWS[row]
    damaged = None
    if row == "a truncated journal file":  # a writer killed mid-record: the last line cut short
        damaged = tmp_path / "study.log"
        shutil.copy(journal, damaged)
        damaged.write_bytes(damaged.read_bytes()[:-25])
        journal = damaged
    if row == "a corrupt SQLite file":
        damaged = tmp_path / "study.db"
        damaged.write_bytes((folder / "study.db").read_bytes()[:6000])
        folder = tmp_path
    damaged_bytes = damaged.read_bytes() if damaged else None
    before = _trials(url)
    args = [a.format(url=url, folder=folder, journal=journal) for a in arguments]
    result = run_tuner(*args, cwd=tmp_path, timeout=180)
    assert_one_line_error(result, fragment)
    assert "pw@" not in result.stderr and ":pw" not in result.stderr  # passwords never printed
    assert _trials(url) == before
    if damaged is not None:
        assert damaged.read_bytes() == damaged_bytes  # the damaged file is left for the user to restore
    assert not list(tmp_path.glob("*.db")) or damaged is not None  # no new study made beside it
