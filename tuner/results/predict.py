"""Load an exported model and classify images with the preprocessing it was trained with.

Training saw single images as float32 pixels in [0, 1] with the model's input
height, width and channels; `prepare` makes any PNG/JPEG file or `.npz` array
look the same (grayscale or RGB, resized, scaled). Models load with Keras'
safe mode: a file that would run arbitrary Python (a `Lambda` layer, say) is
refused, never executed. An image over the pixel cap (a decompression bomb),
or an .npz array of more values than that, is refused from its header, never
decoded (tuner.data.image_files).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tuner.core.errors import TunerError
from tuner.data.image_files import MAX_IMAGE_PIXELS, ImageTooLarge, open_image

NPZ_KEYS = ("x", "x_test", "images", "x_train")
READ_SIDE = 1024  # larger images are scaled down to about this shorter side before prediction (inputs are smaller)


def check_model_file(path: str | Path) -> Path:
    """Fail fast, before importing Keras, on a path that cannot be a `.keras` model."""
    path = Path(path)
    if not path.is_file():
        raise TunerError(f"{path} does not exist; pass a .keras file written by 'tuner export'")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise TunerError(f"{path} is not a Keras model file (.keras); pass a model written by 'tuner export'")
    return path


def load_model(path: str | Path) -> Any:
    """The model at `path`, loaded in safe mode; TunerError for anything else."""
    path = check_model_file(path)
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        text = str(error)
        if "safe_mode" in text or "arbitrary code" in text:
            raise TunerError(
                f"{path} was refused by Keras' safe mode: it would run arbitrary code when loaded; "
                "use a model written by 'tuner export', or load it in Python with safe_mode=False only if you trust it"
            ) from None
        first = text.splitlines()[0] if text else type(error).__name__
        raise TunerError(f"cannot load {path} as a Keras model ({first}); pass a model written by 'tuner export'") from None


def _scaled(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype="float32")
    return array / 255.0 if array.size and array.max() > 1.0 else array


def _npz_shape(archive: Any, key: str) -> tuple[int, ...]:
    """The shape of array `key` from its .npy header, without reading (or decompressing) its values."""
    with archive.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            return tuple(np.lib.format.read_array_header_1_0(member)[0])
        if version == (2, 0):
            return tuple(np.lib.format.read_array_header_2_0(member)[0])
        raise ValueError(f"unsupported .npy format version {version}")


def _read_npz(path: Path) -> list[tuple[str, np.ndarray]]:
    """The images of the .npz's image array; its size is checked from its header before its values are read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            shapes = {key: _npz_shape(archive, key) for key in archive.files}
            key = next((k for k in NPZ_KEYS if k in shapes), None)
            key = key or next((k for k, shape in shapes.items() if len(shape) >= 2), None)
            if key is None:
                raise TunerError(f"{path} holds no image array (keys {sorted(shapes)}); save the images as array 'x'")
            if math.prod(shapes[key]) > MAX_IMAGE_PIXELS:
                raise TunerError(
                    f"refusing {path}: array {key!r} of shape {shapes[key]} holds {math.prod(shapes[key]):,} values, "
                    f"over the cap of {MAX_IMAGE_PIXELS:,}; split it into smaller .npz files and predict each"
                )
            images = archive[key]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise TunerError(f"cannot read {path} as .npz ({error}); pass PNG/JPEG images or an .npz of images") from None
    images = images[np.newaxis] if images.ndim == 2 else images
    if images.ndim == 4 and images.shape[-1] not in (1, 3):
        raise TunerError(f"{path}: array {key!r} has shape {images.shape}; expected (n, height, width[, 1 or 3])")
    return [(f"{path}[{i}]", _scaled(image)) for i, image in enumerate(images)]


def _read_image(path: Path) -> np.ndarray:
    """The image's pixels in [0, 1]; refused in one line over the pixel cap, checked before any decoding.

    An image far larger than any model input is decoded at a reduced scale (JPEG's `draft`) or halved down
    (`reduce`) to READ_SIDE before it becomes float32: memory stays bounded by the cap.
    """
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as image:
            image.draft(None, (READ_SIDE, READ_SIDE))
            factor = min(image.size) // READ_SIDE
            reduced = image.reduce(factor) if factor > 1 else image
            return _scaled(np.asarray(reduced.convert("RGB")))
    except ImageTooLarge as error:
        side = math.isqrt(MAX_IMAGE_PIXELS)
        raise TunerError(
            f"refusing {path}: {error} (a decompression bomb, or far more than a classifier needs); "
            f"shrink it to at most {side}x{side} pixels and predict again"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        reason = "not a PNG or JPEG image" if isinstance(error, UnidentifiedImageError) else error.strerror or str(error)
        raise TunerError(f"cannot read {path}: {reason}; pass PNG/JPEG images or an .npz of images") from None


def read_inputs(paths: list[str]) -> list[tuple[str, np.ndarray]]:
    """(label, image in [0, 1] with shape (h, w) or (h, w, c)) for every image in `paths`."""
    inputs = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise TunerError(f"{path} does not exist; pass PNG/JPEG images or an .npz of images")
        inputs += _read_npz(path) if path.suffix == ".npz" else [(str(path), _read_image(path))]
    return inputs


def prepare(image: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """One image as the model saw training images: channels, then size, in [0, 1]."""
    from PIL import Image

    height, width, channels = input_shape
    image = image[..., np.newaxis] if image.ndim == 2 else image
    if channels == 1 and image.shape[-1] == 3:
        image = (image @ np.array([0.299, 0.587, 0.114], dtype="float32"))[..., np.newaxis]  # as PIL's "L"
    elif channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.shape[:2] != (height, width):
        image = np.stack(
            [
                np.asarray(Image.fromarray(image[..., c], mode="F").resize((width, height), Image.Resampling.BILINEAR))
                for c in range(image.shape[-1])
            ],
            axis=-1,
        )
    return np.clip(image, 0.0, 1.0).astype("float32")


def class_names_for(model_path: Path, num_classes: int) -> list[str]:
    """The class names from the model card beside the model, else the class indices."""
    card = Path(model_path).with_suffix(".card.json")
    if card.is_file():
        try:
            names = json.loads(card.read_text()).get("class_names")
            if names and len(names) == num_classes:
                return list(names)
        except (OSError, ValueError):
            pass
    return [str(i) for i in range(num_classes)]


def predict(model_path: str | Path, image_paths: list[str]) -> list[tuple[str, str, float]]:
    """(image label, class name, probability) for each image."""
    check_model_file(model_path)
    inputs = read_inputs(image_paths)  # bad files fail before the (slow) model load
    model = load_model(model_path)
    input_shape = tuple(model.input_shape[1:])
    batch = np.stack([prepare(image, input_shape) for _, image in inputs])
    probabilities = np.asarray(model.predict(batch, batch_size=256, verbose=0))
    names = class_names_for(Path(model_path), probabilities.shape[1])
    return [(label, names[int(p.argmax())], float(p.max())) for (label, _), p in zip(inputs, probabilities)]
