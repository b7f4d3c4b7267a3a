"""Write real images into a class-folder tree, as a user's own data set would look."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

UNBALANCED = (200, 160, 130, 110, 90, 80, 70, 60, 50, 50)  # 1,000 images, 4:1 between largest and smallest


def write_tree(root: Path, images: np.ndarray, labels: np.ndarray, names, counts=UNBALANCED, corrupt: bool = True) -> Path:
    """PNG files per class (`counts[c]` of class c); every 7th one resized; one corrupt file."""
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    for label, count in enumerate(counts):
        folder = root / names[label]
        folder.mkdir(exist_ok=True)
        for number, index in enumerate(np.flatnonzero(labels == label)[:count]):
            image = Image.fromarray(images[index])
            if written % 7 == 0:
                image = image.resize((36, 36) if written % 2 else (20, 20))
            image.save(folder / f"{number:04d}.png")
            written += 1
    if corrupt:
        (root / names[0] / "broken.png").write_bytes(b"this is not a PNG file")
    return root


def write_bomb(path: Path, width: int, height: int) -> Path:
    """A real grayscale PNG of `width` x `height` black pixels: tiny on disk, width * height bytes once decoded."""
    compressor = zlib.compressobj(6)
    block, left, parts = bytes(1 << 24), (width + 1) * height, []  # each row: filter byte 0, then its pixels
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path
