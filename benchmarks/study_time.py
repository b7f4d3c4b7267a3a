"""Wall time of one fixed study, side by side for several checkouts or environment settings.

    python benchmarks/study_time.py --variant before /path/to/old/checkout --variant after .
    python benchmarks/study_time.py --variant default . --variant system-allocator . TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1

The study trains named seed baselines only, so every run trains the same
configurations (a sampler's draws would differ with the trials' values).
The variants run in turn, `--repeats` rounds, each a fresh `python -m
tuner` process in an empty folder, timed from its start to its exit
(imports included). Printed: each variant's median seconds and its ratio
to the first variant's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = "digits --trials 5 --baselines seed000-v1,seed000-v2,seed000-v3,seed000-v4,seed000-v5 --folds 2 --epochs 3"


def timed_run(code: Path, environment: dict[str, str], study: list[str]) -> float:
    """Seconds of one `python -m tuner run STUDY` of `code` in an empty folder."""
    with tempfile.TemporaryDirectory(prefix="study-time-") as folder:
        env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3", **environment}
        command = [sys.executable, "-m", "tuner", "run", *study, "--no-progress", "--storage", f"sqlite:///{folder}/s.db"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{code} {environment}: exit {done.returncode}: {done.stderr[-500:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar="LABEL CODE [NAME=VALUE ...]",
        help="a label, a checkout and environment settings; give two or more",
    )
    parser.add_argument("--study", default=STUDY, help=f"the study's arguments (default: {STUDY})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    variants = []
    for given in args.variant:
        if len(given) < 2:
            parser.error("--variant needs LABEL CODE")
        label, code, *settings = given
        environment = dict(setting.split("=", 1) for setting in settings)
        variants.append({"label": label, "code": str(Path(code).resolve()), "environment": environment, "seconds": []})
    for _ in range(args.repeats):
        for variant in variants:
            variant["seconds"].append(round(timed_run(Path(variant["code"]), variant["environment"], args.study.split()), 2))
    first = statistics.median(variants[0]["seconds"])
    for variant in variants:
        variant["median"] = statistics.median(variant["seconds"])
        variant["ratio_to_first"] = round(variant["median"] / first, 3)
        print(
            f"{variant['label']:>18}: median {variant['median']:.1f} s of {variant['seconds']}, "
            f"{variant['ratio_to_first']:.2f}x {variants[0]['label']}"
        )
    if args.json:
        figures = {"study": args.study, "repeats": args.repeats, "variants": variants}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
