"""How fast, and how good, is one candidate final model on Fashion-MNIST on this machine?

`python benchmarks/feasibility.py --epochs 3` trains the benchmark's "large"
model (2 conv blocks with batch norm, 32-32-64-64, dense 256) on 50,000 of
the 60,000 training images and prints, after each epoch, the training
seconds and the accuracy on the other 10,000: a validation hold-out cut
from the training split. The sealed test split is never read here, so the
figures can guide design choices (which family, how many epochs) without
selecting on the test set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOLD_OUT = 10_000  # validation images cut from the training split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", default="large", help="a model size of benchmarks/run.py")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "feasibility.json"))
    args = parser.parse_args()

    import keras
    from sklearn.model_selection import train_test_split

    from benchmarks.run import SEED, machine_info, model_spec
    from tuner.data import load_dataset
    from tuner.data.dataset import SPLIT_SEED
    from tuner.training import models

    dataset = load_dataset("fashion")
    x_train, x_val, y_train, y_val = train_test_split(
        dataset.x_train, dataset.y_train, test_size=HOLD_OUT, stratify=dataset.y_train, random_state=SPLIT_SEED
    )
    spec = model_spec(args.size, dataset, args.epochs, args.batch_size)
    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, len(y_train))
    epochs = []
    for epoch in range(args.epochs):
        started = time.perf_counter()
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
        epochs.append({"epoch": epoch + 1, "train_seconds": seconds, "validation_accuracy": float(accuracy)})
        print(
            f"epoch {epoch + 1}: {seconds:.0f} s, validation accuracy {accuracy:.4f} ({HOLD_OUT} held-out training images)",
            flush=True,
        )
    result = {
        "machine": machine_info(),
        "backend": keras.backend.backend(),
        "model": args.size,
        "batch_size": args.batch_size,
        "train_images": len(y_train),
        "validation_images": len(y_val),
        "epochs": epochs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
