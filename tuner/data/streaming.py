"""Image folders too large for memory: read from disk one batch at a time.

`FileImages` stands where an image array would: it knows its files, its shape
and how to read image i, but holds no pixels. The harness turns a fold's
indices into a `FolderBatches`, a `keras.utils.PyDataset`, which Keras reads
batch by batch on the TensorFlow and JAX backends alike
(tuner.training.batches).
"""

from __future__ import annotations

import numpy as np

from tuner.core.errors import TunerError
from tuner.data.image_files import open_image

STREAM_ABOVE_BYTES = 2 << 30  # images above this many bytes of float32 pixels are streamed
WORKERS = 4  # threads that read and decode files while the model trains


def read_image(path: str, size: int, channels: int) -> np.ndarray:
    """One image as float32 pixels in [0, 1], shape (size, size, channels).

    Raises OSError (or ValueError, SyntaxError) when unreadable, ImageTooLarge (a ValueError) over the pixel
    cap. A JPEG far larger than `size` is decoded at a reduced scale (`draft`), never in full.
    """
    from PIL import Image

    with open_image(path) as opened:
        opened.draft(None, (size, size))
        resized = opened.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype="float32") / 255.0
    return pixels[..., np.newaxis] if channels == 1 else pixels


class FileImages:
    """Image files that act like an image array for shape and indexing, read lazily."""

    def __init__(self, paths: list[str] | np.ndarray, size: int, channels: int):
        self.paths = np.asarray(paths, dtype=object)
        self.size, self.channels = size, channels
        self.unreadable: list[str] = []  # files that failed to decode while streaming (zeros were used)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, self.channels)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Pixels of the images at `indices`; an image that fails to decode is zeros, and counted."""
        batch = np.zeros((len(indices), self.size, self.size, self.channels), dtype="float32")
        for row, index in enumerate(indices):
            try:
                batch[row] = read_image(self.paths[index], self.size, self.channels)
            except (OSError, ValueError, SyntaxError):
                self.unreadable.append(str(self.paths[index]))
        return batch


def is_streamed(x: object) -> bool:
    """Whether `x` stands for image files read per batch rather than pixels in memory."""
    return isinstance(x, FileImages)


def should_stream(setting: bool | str, count: int, size: int, channels: int) -> bool:
    """The study's `streaming` setting: True, False, or "auto" (stream above STREAM_ABOVE_BYTES)."""
    if setting in (True, False):
        return setting
    if setting != "auto":
        raise TunerError(f'streaming must be true, false or "auto", got {setting!r}; fix the study file')
    return count * size * size * channels * 4 > STREAM_ABOVE_BYTES
