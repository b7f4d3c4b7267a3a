"""GPU set-up, checked on a CPU: the backend chosen from a faked machine, devices dealt to workers, the GPU's batch sizes.

No GPU is needed: the GPU list is faked (nvidia-smi's text, or a stand-in
nvidia-smi on PATH) and so is a JAX CUDA plugin (an empty package of its
name); what runs on them is the real code. Training under bfloat16 and the
compilation cache are in tests/training/test_gpu_training.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings

import optuna
import pytest
from conftest import tuner_env

from search_spaces import cnn
from tuner.cli import build_parser
from tuner.core.errors import TunerError
from tuner.core.settings import EXPORT, RUN, WORKER, StudyConfig, as_flags
from tuner.core.study_file import load_study_config
from tuner.core.traits import DataTraits
from tuner.distributed import worker_devices as devices
from tuner.distributed.worker_devices import JAX_CPU, JAX_CUDA, NO_JAX, Gpu, choose_backend

H200 = "GPU 0: NVIDIA H200 (UUID: GPU-5f0c2d1e-aaaa-bbbb-cccc-000000000000)\n"
TWO = (
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-0000-0000-0000-000000000000)\n"
    "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-22222222-0000-0000-0000-000000000000)\n"
    "  MIG 1g.10gb     Device  0: (UUID: MIG-33333333-0000-0000-0000-000000000000)\n"
)


# --- the Keras backend, from a faked environment


def test_a_visible_gpu_with_jax_cuda_chooses_jax_and_says_so_in_one_line():
    backend, reason = choose_backend({}, devices.parse_gpu_list(H200), JAX_CUDA)
    assert backend == "jax"
    assert reason == "GPU 0 (NVIDIA H200) visible and KERAS_BACKEND unset: using JAX"
    assert "\n" not in reason


def test_an_explicit_keras_backend_always_wins():
    assert choose_backend({"KERAS_BACKEND": "tensorflow"}, [Gpu("0", "NVIDIA H200")], JAX_CUDA) == (None, "")


def test_no_gpu_leaves_keras_default_and_says_nothing():
    for jax in (JAX_CUDA, JAX_CPU, NO_JAX):
        assert choose_backend({}, [], jax) == (None, "")


@pytest.mark.parametrize(("jax", "missing"), [(JAX_CPU, "JAX has no CUDA plugin"), (NO_JAX, "JAX is not installed")])
def test_a_gpu_without_jax_cuda_is_named_with_the_fix(jax, missing):
    backend, reason = choose_backend({}, [Gpu("0", "NVIDIA H200")], jax)
    assert backend is None  # the CPU wheel of TensorFlow would train on the CPU: the user is told, not surprised
    assert missing in reason and "pip install 'tuner[gpu]'" in reason and "training on the CPU" in reason


def test_nvidia_smi_listing_and_cuda_visible_devices():
    listed = devices.parse_gpu_list(TWO)
    assert [(g.id, g.name) for g in listed] == [("0", "NVIDIA H100 80GB HBM3"), ("1", "NVIDIA H100 80GB HBM3")]
    assert devices.narrow_to_visible(listed, {}) == listed
    assert [g.id for g in devices.narrow_to_visible(listed, {"CUDA_VISIBLE_DEVICES": "1"})] == ["1"]
    by_uuid = {"CUDA_VISIBLE_DEVICES": "GPU-22222222-0000-0000-0000-000000000000,0"}
    assert [g.id for g in devices.narrow_to_visible(listed, by_uuid)] == ["1", "0"]
    assert devices.narrow_to_visible(listed, {"CUDA_VISIBLE_DEVICES": ""}) == []
    assert devices.narrow_to_visible(listed, {"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_this_machine_has_jax_without_cuda():
    """What jax_support finds here, by looking, not importing (the CI machine has jax, CPU only)."""
    assert devices.jax_support() == JAX_CPU


CHOOSE_THEN_IMPORT = """
import os, sys
from tuner.cli import main
code = main(["predict", "missing.keras", "missing.png"])
print("keras imported by main:", "keras" in sys.modules)
import keras
print("backend:", keras.backend.backend(), "exit:", code)
"""


def _fake_machine(tmp_path, plugin: bool) -> dict[str, str]:
    """A stand-in `nvidia-smi` that lists one H200, and (if `plugin`) an empty package named like JAX's CUDA plugin."""
    bin_dir, site = tmp_path / "bin", tmp_path / "site"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho called >> '{tmp_path / 'nvidia-smi-calls'}'\nprintf '{H200}'\n")
    smi.chmod(0o755)
    if plugin:
        (site / "jax_cuda12_plugin").mkdir(parents=True)
        (site / "jax_cuda12_plugin" / "__init__.py").write_text("")
    env = tuner_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{site}"
    env.pop("KERAS_BACKEND", None)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


@pytest.mark.slow  # a fresh process imports a Keras backend (10 CPU seconds)
def test_the_cli_chooses_jax_before_keras_is_imported(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHOOSE_THEN_IMPORT],
        cwd=tmp_path,
        env=_fake_machine(tmp_path, plugin=True),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == "tuner: GPU 0 (NVIDIA H200) visible and KERAS_BACKEND unset: using JAX", result.stderr
    assert lines[1].startswith("tuner: error: missing.keras does not exist"), result.stderr
    assert "keras imported by main: False" in result.stdout
    assert "backend: jax exit: 2" in result.stdout, result.stdout + result.stderr


def test_the_cli_says_when_a_gpu_would_go_unused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tuner", "predict", "missing.keras", "missing.png"],
        cwd=tmp_path,
        env=_fake_machine(tmp_path, plugin=False),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("tuner: GPU 0 (NVIDIA H200) visible but JAX has no CUDA plugin: training on the CPU")


def test_help_and_report_do_not_look_for_gpus(tmp_path):
    """`tuner --help` and `tuner report` stay instant: they never run nvidia-smi (the stand-in logs each call)."""
    env = _fake_machine(tmp_path, plugin=True)
    for args in (["--help"], ["run", "--help"], ["report", "nosuchstudy"]):
        result = subprocess.run(
            [sys.executable, "-m", "tuner", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert "visible" not in result.stderr, args
    assert not (tmp_path / "nvidia-smi-calls").exists()
    assert subprocess.run(["nvidia-smi", "-L"], env=env, capture_output=True).returncode == 0
    assert (tmp_path / "nvidia-smi-calls").exists()  # (the stand-in does log when it is run)


# --- devices for N local workers, from a faked device list


def test_four_workers_on_one_gpu_share_it_and_its_memory():
    envs = [devices.worker_env(i, 4, gpus=["0"], cpus=16) for i in range(4)]
    assert all("CUDA_VISIBLE_DEVICES" not in env for env in envs)  # the one GPU: nothing to narrow
    assert {env["XLA_PYTHON_CLIENT_PREALLOCATE"] for env in envs} == {"false"}
    assert {env["TF_FORCE_GPU_ALLOW_GROWTH"] for env in envs} == {"true"}
    assert {env["XLA_PYTHON_CLIENT_MEM_FRACTION"] for env in envs} == {"0.225"}  # 0.9 / 4: at most an equal share
    assert {env["OMP_NUM_THREADS"] for env in envs} == {"4"}
    assert devices.describe(4, gpus=["0"], cpus=16) == "4 workers sharing GPU 0, 4 CPU threads each"


def test_one_worker_on_one_gpu_keeps_jax_defaults():
    env = devices.worker_env(0, 1, gpus=["0"], cpus=16)
    assert not {"CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION"} & set(env)


def test_five_workers_on_two_gpus_round_robin():
    envs = [devices.worker_env(i, 5, gpus=["0", "1"], cpus=16) for i in range(5)]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1", "0", "1", "0"]
    # GPU 0 takes three workers, GPU 1 two: each gets an equal share of its own GPU
    assert [env["XLA_PYTHON_CLIENT_MEM_FRACTION"] for env in envs] == ["0.300", "0.450", "0.300", "0.450", "0.300"]
    assert devices.describe(5, gpus=["0", "1"], cpus=16) == (
        "5 workers on GPUs 0, 1 (round robin, 2-3 per GPU), 3 CPU threads each"
    )


def test_two_workers_on_two_gpus_get_one_each_with_default_memory():
    envs = [devices.worker_env(i, 2, gpus=["0", "1"], cpus=16) for i in range(2)]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1"]
    assert not any("XLA_PYTHON_CLIENT_PREALLOCATE" in env for env in envs)


def test_workers_on_the_cpu_get_no_gpu_settings():
    env = devices.worker_env(0, 2, gpus=[], cpus=2)
    assert not {k for k in env if k.startswith(("XLA_PYTHON", "CUDA", "TF_FORCE"))}


# --- precision: one setting, from the study file, the flags and to the workers


def test_precision_is_a_study_setting_with_a_flag_on_run_worker_and_export(tmp_path):
    assert StudyConfig().precision == "auto"
    assert load_study_config("digits", {"precision": "mixed_bfloat16"}).precision == "mixed_bfloat16"
    assert as_flags({"precision": "float32"}, WORKER) == ["--precision", "float32"]
    assert as_flags({"precision": "float32"}, EXPORT) == ["--precision", "float32"]
    study = tmp_path / "s.toml"
    study.write_text('dataset = "digits"\n[validation]\nprecision = "float16"\n')
    with pytest.raises(TunerError, match="unknown precision 'float16'; choose one of auto, float32, mixed_bfloat16"):
        load_study_config(str(study))
    assert "precision" not in load_study_config("digits").identity()  # a study may go on under another precision
    assert build_parser().parse_args([RUN, "digits", "--precision", "mixed_bfloat16"]).precision == "mixed_bfloat16"


# --- batch sizes the GPU likes


def _batch_sizes(traits: DataTraits, trials: int = 200) -> list[int]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    sizes = []
    for _ in range(trials):
        trial = study.ask()
        sizes.append(cnn.SPACE.suggest(trial, (28, 28, 1), 10, 4, traits).train.batch_size)
        study.tell(trial, 0.0)
    return sizes


def test_on_a_gpu_the_space_draws_batches_from_128():
    cpu, gpu = _batch_sizes(DataTraits()), _batch_sizes(DataTraits(min_batch_size=128))
    assert min(cpu) < 64 and max(cpu) <= 1024
    assert min(gpu) >= 128 and max(gpu) <= 1024 and max(gpu) > 512


def test_cpu_and_gpu_trials_can_share_one_study():
    """Same name, same log scale: Optuna accepts both ranges in one study (CPU and GPU workers together)."""
    study = optuna.create_study()
    for traits in (DataTraits(), DataTraits(min_batch_size=128), DataTraits()):
        trial = study.ask()
        cnn.SPACE.suggest(trial, (28, 28, 1), 10, 4, traits)
        study.tell(trial, 0.5)
    assert len(study.trials) == 3


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("name", sorted(cnn.BASELINES))
def test_seed_baselines_keep_their_batch_size_on_a_gpu(name):
    params = {**cnn.BASELINES[name], "epochs": 4}
    study = optuna.create_study()
    study.enqueue_trial(params)
    trial = study.ask()
    below = params["batch_size"] < 128  # Optuna warns, and uses it (the objective hides that warning)
    with pytest.warns(UserWarning, match="out of range") if below else _no_warning():
        spec = cnn.SPACE.suggest(trial, (28, 28, 1), 10, 4, DataTraits(min_batch_size=128))
    assert spec.train.batch_size == params["batch_size"]
    assert set(trial.params) == set(params)  # every parameter of the baseline used, none drawn instead


# --- "auto" precision: bfloat16 only where it is fast (the device queried is faked; the rule is real)


def test_auto_precision_is_float32_on_this_cpu_and_bfloat16_on_a_recent_gpu(monkeypatch):
    from tuner.training import device, precision

    assert precision.resolve_precision("auto") == "float32"  # this machine: no GPU
    monkeypatch.setattr(device, "accelerator", lambda: "gpu")
    cases = (((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"), ((7, 5), "float32"), (None, "float32"))
    for capability, expected in cases:
        monkeypatch.setattr(device, "compute_capability", lambda capability=capability: capability)
        assert precision.resolve_precision("auto") == expected, capability
    assert precision.resolve_precision("float32") == "float32"  # an explicit choice is never changed
    monkeypatch.setattr(device, "accelerator", lambda: "tpu")
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
