"""Write real images into a class-folder tree, as a user's own data set would look."""

from __future__ import annotations

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
