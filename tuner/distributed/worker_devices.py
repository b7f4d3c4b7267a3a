"""Which backend, device and how many CPU threads each training process gets.

All of this is environment, so it must be decided before a process imports
Keras, TensorFlow or JAX: the CLI chooses the Keras backend first thing
(`choose_backend`), and local_workers passes each child its share
(`worker_env`). N workers on one machine must not fight over it: with several
GPUs each worker sees one (CUDA_VISIBLE_DEVICES, round robin); workers that
share a GPU take its memory as they need it, up to an equal share, instead of
the first one preallocating most of it; and each worker's math libraries get
an equal share of the cores instead of one thread per core each.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

# What JAX can do on this machine (`jax_support`): train on a CUDA GPU, only on the CPU, or not at all.
JAX_CUDA, JAX_CPU, NO_JAX = "cuda", "cpu", "none"
GPU_MEMORY_SHARE = 0.9  # of a GPU's memory, split among the workers on it (the rest: CUDA's own and the driver's)


@dataclass(frozen=True)
class Gpu:
    """A GPU as `nvidia-smi -L` lists it: its index (what CUDA_VISIBLE_DEVICES names) and model."""

    id: str
    name: str = ""
    uuid: str = ""

    def __str__(self) -> str:
        return f"GPU {self.id} ({self.name})" if self.name else f"GPU {self.id}"


def _nvidia_smi_gpus() -> list[Gpu]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_gpu_list(listing)


def parse_gpu_list(listing: str) -> list[Gpu]:
    """The GPUs in `nvidia-smi -L`'s output ("GPU 0: NVIDIA H200 (UUID: GPU-...)"; MIG lines are left out)."""
    gpus = []
    for line in listing.splitlines():
        found = re.match(r"GPU (\d+): (.*?)\s*(?:\(UUID: ([^)]*)\))?\s*$", line)
        if found:
            gpus.append(Gpu(found.group(1), found.group(2), found.group(3) or ""))
    return gpus


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[Gpu]:
    """The GPUs this process may use: `nvidia-smi -L`, narrowed to $CUDA_VISIBLE_DEVICES (indices or UUIDs) if set."""
    return narrow_to_visible(_nvidia_smi_gpus(), os.environ if environ is None else environ)


def narrow_to_visible(listed: list[Gpu], environ: Mapping[str, str]) -> list[Gpu]:
    """`listed` GPUs that $CUDA_VISIBLE_DEVICES leaves visible, in its order (all of them when it is unset)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return listed
    wanted = [g.strip() for g in visible.split(",") if g.strip()]
    return [gpu for want in wanted for gpu in listed if want in (gpu.id, gpu.uuid)]


def gpu_ids(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this machine offers: $CUDA_VISIBLE_DEVICES if set, else `nvidia-smi -L`, else none."""
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    return [gpu.id for gpu in _nvidia_smi_gpus()]


def jax_support() -> str:
    """JAX_CUDA when JAX and a CUDA plugin (jax[cuda12] or jax[cuda13]) are installed, JAX_CPU without one,
    NO_JAX without JAX; found without importing anything."""
    if importlib.util.find_spec("jax") is None:
        return NO_JAX
    plugins = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_plugins.xla_cuda12", "jax_plugins.xla_cuda13")
    for plugin in plugins:
        try:
            if importlib.util.find_spec(plugin) is not None:
                return JAX_CUDA
        except ModuleNotFoundError:  # jax_plugins itself is missing
            continue
    return JAX_CPU


def choose_backend(environ: Mapping[str, str], gpus: list[Gpu], jax: str) -> tuple[str | None, str]:
    """The Keras backend to set (None: leave Keras' choice alone) and the reason, one line for the user ("" to say nothing).

    A GPU is only used by Keras through a backend built for it: here, JAX with
    CUDA (the `gpu` extra). TensorFlow's wheel in the default install is the
    CPU one, so on a GPU machine it would train on the CPU without a word.
    An explicit KERAS_BACKEND always wins.
    """
    if environ.get("KERAS_BACKEND"):
        return None, ""
    if not gpus:
        return None, ""
    if jax == JAX_CUDA:
        return "jax", f"{gpus[0]} visible and KERAS_BACKEND unset: using JAX"
    missing = "JAX has no CUDA plugin" if jax == JAX_CPU else "JAX is not installed"
    return None, (
        f"{gpus[0]} visible but {missing}: training on the CPU; "
        "pip install 'tuner[gpu]' (or set KERAS_BACKEND) to use the GPU"
    )


def cpu_count() -> int:
    """Cores this process may use (respects taskset and container CPU sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_env(index: int, workers: int, gpus: list[str] | None = None, cpus: int | None = None) -> dict[str, str]:
    """Environment variables for local worker `index` of `workers`."""
    gpus = gpu_ids() if gpus is None else gpus
    threads = max(1, (cpu_count() if cpus is None else cpus) // workers)
    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(min(2, threads)),
        "TUNER_WORKER_INDEX": str(index),
    }
    if threads == 1:  # JAX's CPU backend: one thread per worker
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()
    if len(gpus) > 1:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    sharing = workers_per_gpu(index, workers, len(gpus)) if gpus else 0
    if sharing > 1:  # several workers on one GPU: memory as needed (not 75% for the first), at most an equal share
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{GPU_MEMORY_SHARE / sharing:.3f}"
    return env


def workers_per_gpu(index: int, workers: int, gpus: int) -> int:
    """How many of `workers` (dealt round robin) share the GPU of worker `index`."""
    return len(range(index % gpus, workers, gpus))


def describe(workers: int, gpus: list[str] | None = None, cpus: int | None = None) -> str:
    """One line for the user: who gets what."""
    gpus = gpu_ids() if gpus is None else gpus
    threads = max(1, (cpu_count() if cpus is None else cpus) // workers)
    if len(gpus) > 1:
        per_gpu = f"{workers // len(gpus)}-{-(-workers // len(gpus))}" if workers % len(gpus) else str(workers // len(gpus))
        return f"{workers} workers on GPUs {', '.join(gpus)} (round robin, {per_gpu} per GPU), {threads} CPU threads each"
    if gpus:
        return f"{workers} workers sharing GPU {gpus[0]}, {threads} CPU threads each"
    return f"{workers} workers on the CPU, {threads} threads each"
