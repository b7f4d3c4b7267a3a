"""Image folders too large for memory: read from disk one batch at a time.

`FileImages` stands where an image array would: it knows its files, its shape
and how to read image i, but holds no pixels. The harness turns a fold's
indices into a `FolderBatches`, a `keras.utils.PyDataset`, which Keras reads
batch by batch on the TensorFlow and JAX backends alike.
"""

from __future__ import annotations

import numpy as np

from tuner.errors import TunerError

STREAM_ABOVE_BYTES = 2 << 30  # images above this many bytes of float32 pixels are streamed
WORKERS = 4  # threads that read and decode files while the model trains


def read_image(path: str, size: int, channels: int) -> np.ndarray:
    """One image as float32 pixels in [0, 1], shape (size, size, channels). Raises OSError when unreadable."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
        pixels = np.asarray(image, dtype="float32") / 255.0
    return pixels[..., np.newaxis] if channels == 1 else pixels


class FileImages:
    """Image files that act like an image array for shape and indexing, read lazily."""

    def __init__(self, paths, size: int, channels: int):
        self.paths = np.asarray(paths, dtype=object)
        self.size, self.channels = size, channels
        self.unreadable: list[str] = []  # files that failed to decode while streaming (zeros were used)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, self.channels)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, indices) -> np.ndarray:
        batch = np.zeros((len(indices), self.size, self.size, self.channels), dtype="float32")
        for row, index in enumerate(indices):
            try:
                batch[row] = read_image(self.paths[index], self.size, self.channels)
            except (OSError, ValueError, SyntaxError):
                self.unreadable.append(str(self.paths[index]))
        return batch


def is_streamed(x) -> bool:
    return isinstance(x, FileImages)


def should_stream(setting, count: int, size: int, channels: int) -> bool:
    """The study's `streaming` setting: True, False, or "auto" (stream above STREAM_ABOVE_BYTES)."""
    if setting in (True, False):
        return setting
    if setting != "auto":
        raise TunerError(f"streaming must be true, false or \"auto\", got {setting!r}; fix the study file")
    return count * size * size * channels * 4 > STREAM_ABOVE_BYTES


def fold_batches(images: FileImages, labels: np.ndarray, indices, batch_size: int, shuffle: bool = False, seed: int = 0):
    """A PyDataset over `indices` of `images`, reshuffled every epoch when `shuffle`."""
    import keras

    class FolderBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=WORKERS, use_multiprocessing=False, max_queue_size=2 * WORKERS)
            self.order = np.asarray(indices)
            self.rng = np.random.default_rng(seed)
            if shuffle:
                self.order = self.rng.permutation(self.order)

        def __len__(self):
            return -(-len(self.order) // batch_size)

        def __getitem__(self, batch):
            chosen = self.order[batch * batch_size : (batch + 1) * batch_size]
            return images.read(chosen), labels[chosen]

        def on_epoch_end(self):
            if shuffle:
                self.order = self.rng.permutation(self.order)

    return FolderBatches()
