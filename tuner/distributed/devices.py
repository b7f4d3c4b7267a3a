"""Which device and how many CPU threads each local worker process gets.

N workers on one machine must not fight over it: with several GPUs each
worker sees one (CUDA_VISIBLE_DEVICES); in every case each worker's math
libraries get an equal share of the cores instead of one thread per core
each. All of this is environment, so it must be set before the worker
process imports TensorFlow or JAX: local_workers passes it to each child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping


def gpu_ids(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this machine offers: $CUDA_VISIBLE_DEVICES if set, else `nvidia-smi -L`, else none."""
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


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
    if gpus and workers > len(gpus):  # several workers share a GPU: take memory as needed, not all of it
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def describe(workers: int, gpus: list[str] | None = None, cpus: int | None = None) -> str:
    """One line for the user: who gets what."""
    gpus = gpu_ids() if gpus is None else gpus
    threads = max(1, (cpu_count() if cpus is None else cpus) // workers)
    if len(gpus) > 1:
        return f"{workers} workers on GPUs {', '.join(gpus)} (one each, round robin), {threads} CPU threads each"
    if gpus:
        return f"{workers} workers sharing GPU {gpus[0]}, {threads} CPU threads each"
    return f"{workers} workers on the CPU, {threads} threads each"
