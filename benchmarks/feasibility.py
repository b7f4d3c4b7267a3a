"""Is 93% on Fashion-MNIST within an hour of this CPU? Time one candidate final model.

`python benchmarks/feasibility.py --epochs 3` trains the benchmark's "large"
model (2 conv blocks with batch norm, 32-32-64-64, dense 256) on the full
60,000 training images and prints seconds per epoch and test accuracy after
each epoch. It reads the sealed test split, as export does: it is a
measurement for BENCHMARKS.md, never part of a study.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", default="large", help="a model size of benchmarks/run.py")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "feasibility.json"))
    args = parser.parse_args()

    import keras

    from benchmarks.run import SEED, machine_info, model_spec
    from tuner import models
    from tuner.data import load_dataset

    dataset = load_dataset("fashion")
    x_test, y_test = dataset.test_split()
    spec = model_spec(args.size, dataset, args.epochs, args.batch_size)
    keras.utils.set_random_seed(SEED)
    model = models.build_model(spec.model)
    models.compile_model(model, spec.train, len(dataset.y_train))
    epochs = []
    for epoch in range(args.epochs):
        started = time.perf_counter()
        model.fit(dataset.x_train, dataset.y_train, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - started
        _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
        epochs.append({"epoch": epoch + 1, "train_seconds": seconds, "test_accuracy": float(accuracy)})
        print(f"epoch {epoch + 1}: {seconds:.0f} s, test accuracy {accuracy:.4f}", flush=True)
    result = {"machine": machine_info(), "backend": keras.backend.backend(), "model": args.size,
              "batch_size": args.batch_size, "epochs": epochs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
