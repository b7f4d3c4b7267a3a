"""Batches of a streamed image folder for Keras: a `PyDataset` over a fold's files, read per batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner.data.streaming import WORKERS, FileImages


def fold_batches(
    images: FileImages, labels: np.ndarray, indices: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0
) -> Any:
    """A PyDataset over `indices` of `images`, reshuffled every epoch when `shuffle`."""
    import keras

    class FolderBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=WORKERS, use_multiprocessing=False, max_queue_size=2 * WORKERS)
            self.order = np.asarray(indices)
            self.rng = np.random.default_rng(seed)
            if shuffle:
                self.order = self.rng.permutation(self.order)

        def __len__(self) -> int:
            return -(-len(self.order) // batch_size)

        def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
            chosen = self.order[batch * batch_size : (batch + 1) * batch_size]
            return images.read(chosen), labels[chosen]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(self.order)

    return FolderBatches()
