"""Hostile input: decompression bombs and images over the pixel cap, links out of an image folder, a killed
writer's partial files, and re-exports that would attach the same artifacts twice."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import optuna
import pytest
from conftest import assert_one_line_error, run_tuner, tuner_env
from image_tree import write_bomb
from optuna.trial import TrialState
from PIL import Image

from tuner.cli import build_parser
from tuner.core.errors import TunerError
from tuner.core.settings import WORKER, as_flags, flag_settings
from tuner.core.study_file import load_study_config
from tuner.data.image_files import MAX_IMAGE_PIXELS
from tuner.data.image_folder import scan_folder

QUICK = ["--folds", "2", "--epochs", "1", "--pruner", "none", "--trials", "1", "--baselines", "seed000-v1", "--no-progress"]

# Runs argv[2:] and writes the child's peak resident memory (kB) to argv[1]; passes its output and status on.
MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[2:], capture_output=True, text=True)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(done.returncode)
"""


def run_measured(tmp_path, *args):
    """`python -m tuner ARGS` like run_tuner, and its peak memory in MB."""
    peak = tmp_path / "maxrss.txt"
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, str(peak), sys.executable, "-m", "tuner", *args],
        cwd=tmp_path,
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, int(peak.read_text()) / 1024


def _tree(root, per_class=12):
    """Two classes of small random grayscale PNGs."""
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype="uint8")).save(root / label / f"{index:02d}.png")
    return root


def _study_file(tmp_path, folder, **settings):
    settings = {"dataset": f"folder:{folder}", "color_mode": "grayscale", "image_size": 12, **settings}
    path = tmp_path / "hostile.toml"
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
    return str(path)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A decompression bomb past Pillow's own limit, one Pillow only warns about, one a row over the cap, one at it."""
    folder = tmp_path_factory.mktemp("bombs")
    return {
        "bomb": write_bomb(folder / "bomb.png", 20000, 20000),  # 400 M pixels in ~0.4 MB
        "warned": write_bomb(folder / "warned.png", 10000, 10000),  # 100 M: Pillow warns, the cap refuses
        "over": write_bomb(folder / "over.png", 8000, 8001),  # the cap is 8000 x 8000
        "at_cap": write_bomb(folder / "at-cap.png", 8000, 8000),
    }


SCAN_AND_READ = """
import json, sys
from tuner.data.image_folder import scan_folder
from tuner.data.streaming import read_image
files = scan_folder(sys.argv[1])
refused = []
for path in files.unreadable:
    try:
        read_image(path, 12, 1)
    except ValueError as error:
        refused.append(str(error))
# VmHWM: this process's own peak (ru_maxrss would start from the parent's size at the fork: pytest's, with Keras)
peak = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))) / 1024
print(json.dumps({"unreadable": files.unreadable, "paths": files.paths, "refused": refused, "peak_mb": peak}))
"""


def test_a_folder_scan_skips_bombs_and_images_over_the_cap_without_decoding_them(tmp_path, bombs):
    root = _tree(tmp_path / "tree")
    for name in ("bomb", "warned", "over"):
        shutil.copy(bombs[name], root / "a")
    shutil.copy(bombs["at_cap"], root / "b")
    scanned = subprocess.run(
        [sys.executable, "-c", SCAN_AND_READ, str(root)], env=tuner_env(), capture_output=True, text=True, timeout=300
    )
    assert scanned.returncode == 0, scanned.stderr
    assert scanned.stderr == ""  # Pillow's DecompressionBombWarning is not shown
    found = json.loads(scanned.stdout)
    assert sorted(os.path.basename(p) for p in found["unreadable"]) == ["bomb.png", "over.png", "warned.png"]
    assert str(root / "b" / "at-cap.png") in found["paths"] and len(found["paths"]) == 25
    assert len(found["refused"]) == 3 and all(f"cap of {MAX_IMAGE_PIXELS:,} pixels" in r for r in found["refused"])
    assert found["peak_mb"] < 250  # 400 M pixels decoded would be 400 MB at the least


@pytest.mark.slow
def test_a_study_runs_on_the_remaining_images_and_counts_the_bombs_it_skipped(tmp_path, sqlite_url, bombs):
    root = _tree(tmp_path / "tree")
    shutil.copy(bombs["bomb"], root / "a")
    shutil.copy(bombs["warned"], root / "b")
    result = run_tuner(_study_file(tmp_path, root), "--storage", sqlite_url, *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "DecompressionBomb" not in result.stderr
    assert "skipped 2 unreadable image(s)" in result.stderr
    study = optuna.load_study(study_name="hostile", storage=sqlite_url)
    assert study.user_attrs["unreadable_images"] == 2
    assert {os.path.basename(p) for p in study.user_attrs["unreadable_examples"]} == {"bomb.png", "warned.png"}
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]


def test_links_out_of_the_folder_are_refused_in_one_line_links_inside_are_read(tmp_path, sqlite_url):
    outside = _tree(tmp_path / "elsewhere")
    root = _tree(tmp_path / "tree")
    (root / "a" / "inside.png").symlink_to(root / "b" / "00.png")  # a link within the folder is fine
    assert str(root / "a" / "inside.png") in scan_folder(root).paths
    (root / "c").symlink_to(outside / "a", target_is_directory=True)  # a class folder elsewhere
    result = run_tuner(_study_file(tmp_path, root), "--storage", sqlite_url, *QUICK, cwd=tmp_path)
    assert_one_line_error(result, str(root / "c"), "outside the image folder", "--follow-links")
    (root / "c").unlink()
    (root / "b" / "secret.png").symlink_to(outside / "b" / "00.png")  # one file elsewhere
    with pytest.raises(TunerError, match="secret.png is a link to .*outside the image folder"):
        scan_folder(root)
    assert str(root / "b" / "secret.png") in scan_folder(root, follow_links=True).paths


def test_follow_links_is_a_study_key_and_a_bare_flag_that_workers_get():
    args = build_parser().parse_args(["worker", "digits", *as_flags({"follow_links": True}, WORKER)])
    assert {name: getattr(args, name) for name, _ in flag_settings(WORKER)}["follow_links"] is True
    assert as_flags({"follow_links": False}, WORKER) == []
    assert build_parser().parse_args(["run", "digits"]).follow_links is None  # not given: the study file decides
    assert load_study_config("digits", {"follow_links": True}).follow_links is True
    assert load_study_config("digits").folder_options() == {}
    with pytest.raises(TunerError, match="follow_links must be true or false"):
        load_study_config("digits", {"follow_links": "yes"})


@pytest.mark.slow
def test_a_study_reads_linked_files_with_follow_links(tmp_path, sqlite_url):
    outside = _tree(tmp_path / "elsewhere")
    root = _tree(tmp_path / "tree")
    (root / "c").symlink_to(outside / "a", target_is_directory=True)
    result = run_tuner(_study_file(tmp_path, root), "--storage", sqlite_url, *QUICK, "--follow-links", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="hostile", storage=sqlite_url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]
    assert study.user_attrs["test_images"] == 8  # a fifth of 36: classes a, b and the linked c (24 would hold out 5)
    config = load_study_config(_study_file(tmp_path, root, follow_links=True))
    assert config.folder_options()["follow_links"] is True


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (untrained) Keras model for 28x28 grayscale images, saved as a .keras file."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    code = (
        "import sys, keras; inputs = keras.Input((28, 28, 1)); "
        "keras.Model(inputs, keras.layers.Dense(3, activation='softmax')(keras.layers.Flatten()(inputs))).save(sys.argv[1])"
    )
    made = subprocess.run([sys.executable, "-c", code, str(path)], env=tuner_env(), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return path


def test_predict_refuses_a_bomb_in_one_line_from_its_header(tmp_path, tiny_model, bombs):
    for name in ("bomb", "warned"):
        result, peak_mb = run_measured(tmp_path, "predict", str(tiny_model), str(bombs[name]))
        assert_one_line_error(
            result, str(bombs[name]), f"cap of {MAX_IMAGE_PIXELS:,} pixels", "shrink it to at most 8000x8000"
        )
        assert peak_mb < 250  # refused before decoding (and before Keras is imported)


def test_predict_refuses_an_npz_over_the_cap_from_its_header(tmp_path, tiny_model):
    big = tmp_path / "big.npz"
    np.savez_compressed(big, x=np.zeros((1, 8001, 8001), dtype="uint8"), y=np.zeros(1))  # ~60 kB on disk
    result, peak_mb = run_measured(tmp_path, "predict", str(tiny_model), str(big))
    assert_one_line_error(result, str(big), "(1, 8001, 8001)", f"cap of {MAX_IMAGE_PIXELS:,}", "split it")
    assert peak_mb < 150  # the 64 M values were never decompressed (as float32 they would be 256 MB)


@pytest.mark.slow
def test_predict_on_a_large_image_under_the_cap_keeps_memory_bounded(tmp_path, tiny_model, bombs):
    small = tmp_path / "small.png"
    Image.new("L", (28, 28)).save(small)
    baseline, baseline_mb = run_measured(tmp_path, "predict", str(tiny_model), str(small))
    assert baseline.returncode == 0, baseline.stderr
    large, large_mb = run_measured(tmp_path, "predict", str(tiny_model), str(bombs["at_cap"]))
    assert large.returncode == 0, large.stderr
    assert large.stdout.startswith(f"{bombs['at_cap']}: ")
    # the whole image as float32 RGB would be 768 MB; decoded as it is stored (8 bits) and reduced, it is 64 MB
    assert large_mb - baseline_mb < 300, (baseline_mb, large_mb)


@pytest.mark.slow
def test_an_export_removes_dead_writers_partial_files_and_attaches_each_artifact_once(digits_export, tmp_path):
    from tuner.storage.artifacts import trial_artifacts
    from tuner.storage.urls import artifact_dir

    shutil.copy(digits_export["folder"] / "study.db", tmp_path / "study.db")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert artifact_dir(digits_export["url"]).is_dir()  # the shared export attached its files already
    shutil.copytree(artifact_dir(digits_export["url"]), artifact_dir(url))
    out = tmp_path / "models"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is now free: a killed export's writer
    stale = out / f".trial-0.partial-{gone.pid}.keras"
    live = out / f".trial-0.card.partial-{os.getpid()}.json"  # this test process is alive: a write in progress
    stale.write_bytes(b"half a model")
    live.write_text("{")
    export = ["export", "digits", "--top", "1", "--storage", url, "--out", str(out)]
    first = run_tuner(*export, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert not stale.exists() and live.exists()
    number = json.loads(next(out.glob("trial-*.card.json")).read_text())["trial"]["number"]

    def artifacts():  # read afresh: a loaded study caches its finished trials
        study = optuna.load_study(study_name="digits", storage=url)
        return trial_artifacts(study, number), optuna.artifacts.get_all_artifact_meta(study)

    of_trial, of_study = artifacts()
    names = sorted(meta.filename for meta in of_trial)
    assert len(names) == len(set(names))  # each file once, though digits_export had attached them already
    assert {f"trial-{number}.card.json", f"trial-{number}.curves.png"} <= set(names)
    study_names = sorted(meta.filename for meta in of_study)
    assert "study-history.png" in study_names and len(study_names) == len(set(study_names))
    card_id = {m.filename: m.artifact_id for m in of_trial}[f"trial-{number}.card.json"]
    second = run_tuner(*export, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    of_trial, of_study = artifacts()
    assert sorted(meta.filename for meta in of_trial) == names  # not doubled
    assert sorted(meta.filename for meta in of_study) == study_names
    stored = artifact_dir(url) / card_id  # the artifact holds the newest card
    assert stored.read_bytes() == (out / f"trial-{number}.card.json").read_bytes()
