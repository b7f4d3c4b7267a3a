"""JAX's persistent compilation cache: a model shape compiled once is loaded from disk after that.

On the JAX backend every new model is compiled by XLA before it trains,
seconds each on a GPU. The cache keeps the compiled programs on disk, keyed
by the program itself, so a process that meets a shape again (the same
architecture and batch size in a later trial, another worker, the export's
final training, a study run again) loads it instead of compiling. The
folder is $TUNER_COMPILATION_CACHE, else ~/.cache/tuner/jax-compilation
($XDG_CACHE_HOME respected); TUNER_COMPILATION_CACHE=off turns it off. The
other backends have nothing to set. JAX trusts what it loads from there,
so the folder is made private to the user.
"""

from __future__ import annotations

import os
from pathlib import Path

# Programs that compiled faster than this are not worth a file (JAX's default is 1 s; a
# CNN's training step on a GPU takes seconds, its small helper programs milliseconds).
MIN_COMPILE_SECONDS = 0.2

_enabled: Path | None = None


def cache_dir() -> Path | None:
    """Where compiled programs are kept; None when $TUNER_COMPILATION_CACHE is "off"."""
    chosen = os.environ.get("TUNER_COMPILATION_CACHE")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tuner" / "jax-compilation"


def enable_compilation_cache() -> Path | None:
    """Turn JAX's persistent compilation cache on in this process (once; before its first compilation counts).

    Returns the cache folder, or None on another backend or when turned off.
    """
    global _enabled
    import keras

    if keras.backend.backend() != "jax":
        return None
    folder = cache_dir()
    if folder is None or _enabled == folder:
        return _enabled if folder else None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # JAX runs what it finds there: keep it the user's own
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)  # of any size (JAX default)
    compilation_cache.reset_cache()  # JAX decides once per process whether to cache: decide again, with the folder
    compilation_cache.set_cache_dir(str(folder))
    _enabled = folder
    return folder
