"""An exported model in deployable formats, each checked by its own runtime before it counts as written.

Each format is written through Keras (`model.save`, `model.export`) under a
temporary name, loaded back by the runtime that will serve it (Keras for
.keras, `tf.saved_model.load` for a SavedModel, onnxruntime for ONNX, the
LiteRT interpreter for .tflite), and run on the whole test split the export
already holds. Only if it picks the Keras model's top class on every image
and its probabilities are within `TOLERANCE` of the Keras model's is it
renamed into place; otherwise it is removed, with one line saying why. The
card gets each format's file, size, agreement figures and latency.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.core.files import disk_full, replacing, replacing_folder, sha256_of
from tuner.core.settings import EXPORT_FORMATS
from tuner.results.latency import latency

# float32 runtimes that fuse, reorder or vectorise the same arithmetic differ by ~1e-7 per operation; over a CNN's
# layers that has measured up to ~1e-6 in a probability. 1e-4 leaves that a hundredfold margin yet is far below any
# difference that changes a decision (a wrong weight, a missing layer or a bfloat16 path differ by 1e-3 or more).
TOLERANCE = 1e-4
CHECK_BATCH = 256  # images per runtime call while checking

Runner = Callable[[np.ndarray], Any]
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


@dataclass(frozen=True)
class Format:
    """One deployable format: Keras' name for it, its file, what it needs installed, where Keras can write it."""

    name: str
    keras_format: str | None  # `model.export(format=...)`; None: `model.save` (Keras' own)
    suffix: str
    modules: tuple[str, ...]  # import names of its converter and runtime
    extra: str | None  # the pip extra that installs them
    backends: tuple[str, ...]  # Keras backends this tuner writes and checks it on
    runtime: str  # what loads and runs it
    package: str  # the distribution whose version the card gives beside `runtime`
    folder: bool = False

    def problem(self, backend: str) -> str | None:
        """Why this format cannot be written here (one line naming the fix), or None."""
        if backend not in self.backends:
            return (
                f"export format {self.name} cannot be written on Keras' {backend} backend; run the export with "
                f"KERAS_BACKEND=tensorflow (or leave {self.name} out of --format)"
            )
        missing = missing_modules(self.modules)
        if missing:
            how = f"pip install 'tuner[{self.extra}]'" if self.extra else f"pip install {' '.join(missing)}"
            return f"export format {self.name} needs {', '.join(missing)}, not installed; install it: {how}"
        return None


FORMATS = {
    f.name: f
    for f in (
        Format("keras", None, ".keras", (), None, KERAS_BACKENDS, "Keras (load_model, safe mode)", "keras"),
        Format(
            "saved_model",
            "tf_saved_model",
            ".saved_model",
            ("tensorflow",),
            None,
            ("tensorflow", "jax"),
            "TensorFlow (tf.saved_model.load, its serve endpoint)",
            "tensorflow",
            folder=True,
        ),
        Format(
            "onnx",
            "onnx",
            ".onnx",
            ("tf2onnx", "onnx", "onnxruntime"),
            "onnx",
            ("tensorflow",),
            "onnxruntime (CPU)",
            "onnxruntime",
        ),
        Format(
            "litert",
            "litert",
            ".tflite",
            ("tensorflow", "ai_edge_litert"),
            "litert",
            ("tensorflow",),
            "LiteRT",
            "ai-edge-litert",
        ),
    )
}
assert tuple(FORMATS) == EXPORT_FORMATS  # the settings' names and these formats are the same list


def missing_modules(names: Iterable[str]) -> list[str]:
    """The import names among `names` that this Python cannot import (found without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def check_formats(names: Iterable[str]) -> None:
    """Refuse, before any training, a format this machine or Keras backend cannot write: one TunerError line.

    Keras is imported (seconds) only to ask a format that some backends cannot write which backend runs; the
    default, .keras alone, is checked without it, so a bad flag or storage URL after this is refused at once.
    """
    for name in names:
        form = FORMATS[name]
        if form.backends == KERAS_BACKENDS:
            backend = form.backends[0]  # every backend writes it: which one runs does not matter
        else:
            import keras

            backend = keras.backend.backend()
        problem = form.problem(backend)
        if problem:
            raise TunerError(problem)


def _keras_runner(path: Path) -> Runner:
    import keras

    model = keras.saving.load_model(path, safe_mode=True)
    return lambda batch: model.predict_on_batch(batch)


def _saved_model_runner(path: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return lambda batch: loaded.serve(tf.constant(batch)).numpy()


def _onnx_runner(path: Path) -> Runner:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _litert_runner(path: Path) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    given, taken = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    shape: list[tuple[int, ...]] = [()]

    def run(batch: np.ndarray) -> np.ndarray:
        if batch.shape != shape[0]:  # a new batch size: the interpreter's tensors are re-planned
            interpreter.resize_tensor_input(given, batch.shape)
            interpreter.allocate_tensors()
            shape[0] = batch.shape
        interpreter.set_tensor(given, batch)
        interpreter.invoke()
        return interpreter.get_tensor(taken)

    return run


RUNNERS: dict[str, Callable[[Path], Runner]] = {
    "keras": _keras_runner,
    "saved_model": _saved_model_runner,
    "onnx": _onnx_runner,
    "litert": _litert_runner,
}


def _write(model: Any, fmt: Format, path: Path) -> None:
    if fmt.keras_format is None:
        model.save(path)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # converters' deprecation notices are not the user's business
        model.export(str(path), format=fmt.keras_format, verbose=False)


def predict_all(run: Runner, x: Any) -> np.ndarray:
    """Class probabilities for every image of `x`, in batches of CHECK_BATCH, as float64."""
    parts = [np.asarray(run(np.asarray(x[i : i + CHECK_BATCH], dtype="float32"))) for i in range(0, len(x), CHECK_BATCH)]
    return np.concatenate(parts).astype("float64")


@dataclass
class Agreement:
    """How a format's probabilities on the test split compare with the Keras model's."""

    images: int
    top1_agreement: float  # the fraction of images on which both pick the same class
    max_abs_difference: float  # the largest absolute difference of any class probability on any image

    @classmethod
    def of(cls, probabilities: np.ndarray, reference: np.ndarray) -> Agreement:
        """Compare two (images, classes) arrays; a shape mismatch agrees on nothing."""
        if probabilities.shape != reference.shape:
            return cls(len(reference), 0.0, float("inf"))
        same = float(np.mean(probabilities.argmax(axis=1) == reference.argmax(axis=1)))
        return cls(len(reference), same, float(np.max(np.abs(probabilities - reference))))

    def agrees(self) -> bool:
        """The same top class on every image, every probability within TOLERANCE."""
        return self.top1_agreement == 1.0 and self.max_abs_difference <= TOLERANCE

    def describe(self) -> str:
        """The figures in words, for the line that rejects a format."""
        differ = round((1 - self.top1_agreement) * self.images)
        return (
            f"top class differs on {differ} of {self.images} test images, max abs probability difference "
            f"{self.max_abs_difference:.2e} (tolerance {TOLERANCE:.0e})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The card's agreement figures."""
        return {
            "images": self.images,
            "top1_agreement": self.top1_agreement,
            "max_abs_probability_difference": self.max_abs_difference,
            "tolerance": TOLERANCE,
        }


@dataclass
class WrittenFormats:
    """What `write_formats` wrote: each format's path and card entry, and the formats it refused."""

    paths: dict[str, Path] = field(default_factory=dict)
    card: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file in a folder."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def version_of(*packages: str) -> str:
    """The installed version of the first of `packages` that is installed (tensorflow or tensorflow-cpu)."""
    for package in packages:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


class _Disagreement(Exception):
    """A written format whose predictions differ from the Keras model's (it is removed)."""


def write_checked(model: Any, fmt: Format, path: Path, x: Any, reference: np.ndarray) -> tuple[dict[str, Any] | None, str]:
    """Write `model` as `fmt` at `path` if its runtime reproduces `reference` on `x`: (card entry, "") or (None, why)."""
    started = time.perf_counter()
    try:
        with (replacing_folder if fmt.folder else replacing)(path) as temporary:
            _write(model, fmt, temporary)
            written = time.perf_counter() - started
            run = RUNNERS[fmt.name](temporary)
            agreement = Agreement.of(predict_all(run, x), reference)
            if not agreement.agrees():
                raise _Disagreement(agreement.describe())
    except _Disagreement as error:
        return None, str(error)
    except TunerError:  # a full disk, as `replacing` words it
        raise
    except Exception as error:  # a converter or runtime that fails on this model: the format is not written
        if fmt.name == "keras" or disk_full(error):
            raise
        return None, f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
    return {
        "file": path.name,
        "bytes": size_of(path),
        "sha256": None if fmt.folder else sha256_of(path),
        "runtime": f"{fmt.runtime} {version_of(fmt.package, fmt.package + '-cpu')}",
        "agreement": agreement.to_dict(),
        "latency": latency(run, x),
        "write_seconds": written,
    }, ""


def write_formats(model: Any, stem: Path, names: Iterable[str], x: Any, reference: np.ndarray) -> WrittenFormats:
    """Each of `names` written beside `stem` and checked on the test images `x` against the Keras probabilities.

    A format that disagrees is not written: one line on stderr names it and
    the figures, and the card lists it as rejected. The .keras file must
    agree: predict, ensembles and the card depend on it.
    """
    result = WrittenFormats()
    for name in names:
        fmt = FORMATS[name]
        path = Path(f"{stem}{fmt.suffix}")
        entry, why = write_checked(model, fmt, path, x, reference)
        if entry is None:
            if name == "keras":
                raise TunerError(f"{path} does not reproduce the trained model ({why}); please report this bug")
            policy = getattr(getattr(model, "dtype_policy", None), "name", "float32")
            if policy != "float32":
                why += f"; the model computes in {policy}: export with --precision float32"
            print(f"tuner: {path.name} ({name}) not written: {why}", file=sys.stderr, flush=True)
            result.rejected[name] = why
            continue
        result.paths[name], result.card[name] = path, entry
    return result
