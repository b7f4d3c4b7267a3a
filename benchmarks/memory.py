"""Memory over a long study: RSS of one `tuner` process across 50 trials, as `run` and as one `worker`.

    python benchmarks/memory.py                      # 50 trials, run and worker, this checkout
    python benchmarks/memory.py --trials 20 --modes run
    python benchmarks/memory.py --code /path/to/other/checkout   # the same measurement of another version

The study is the issue's: `digits --folds 2 --epochs 2 --baselines none
--pruner none`, so every trial builds, trains and drops two new models.
RSS is read from /proc each time the process prints a finished trial's
line. Reported: RSS after trial 2 (imports and first compilations done),
after the last trial, the growth between them, and the growth per trial.
Goal (issue 14): <= 200 MB over 50 trials.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIAL_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?trial\s+(\d+)\s+(COMPLETE|PRUNED|FAIL)")
STUDY = ["digits", "--folds", "2", "--epochs", "2", "--baselines", "none", "--pruner", "none"]


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def measure(mode: str, trials: int, code: Path) -> dict:
    """Run the study in one process and sample its RSS after every finished trial."""
    folder = Path(tempfile.mkdtemp(prefix=f"memory-{mode}-"))
    storage = f"journal:///{folder / 'study.log'}"
    command = ["run", *STUDY, "--no-progress"] if mode == "run" else ["worker", *STUDY]
    command += ["--trials", str(trials), "--storage", storage]
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "tuner", *command], cwd=folder, env=env, stdout=subprocess.PIPE, text=True
    )
    samples: list[tuple[int, float]] = []
    assert process.stdout is not None
    for line in process.stdout:
        if TRIAL_LINE.match(line):
            try:
                samples.append((len(samples) + 1, rss_mb(process.pid)))
            except (FileNotFoundError, RuntimeError):
                break
    process.wait()
    if process.returncode != 0 or len(samples) < min(trials, 3):
        raise SystemExit(f"{mode}: exit {process.returncode} after {len(samples)} trial lines")
    after_2, last = samples[1][1], samples[-1][1]
    return {
        "mode": mode,
        "trials": len(samples),
        "rss_after_trial_2_mb": round(after_2, 1),
        "rss_after_last_trial_mb": round(last, 1),
        "peak_mb": round(max(r for _, r in samples), 1),
        "growth_mb": round(last - after_2, 1),
        "growth_per_trial_mb": round((last - after_2) / max(1, len(samples) - 2), 2),
        "seconds": round(time.monotonic() - started, 1),
        "samples": [round(r, 1) for _, r in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--modes", default="run,worker", help="run, worker or both (comma-separated)")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose tuner to measure (default: this one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = [measure(mode, args.trials, args.code.resolve()) for mode in args.modes.split(",")]
    for r in results:
        print(
            f"{r['mode']:>6}: {r['trials']} trials in {r['seconds']:.0f}s; RSS {r['rss_after_trial_2_mb']:.0f} MB after "
            f"trial 2 -> {r['rss_after_last_trial_mb']:.0f} MB after trial {r['trials']} (peak {r['peak_mb']:.0f}): "
            f"growth {r['growth_mb']:+.0f} MB, {r['growth_per_trial_mb']:+.2f} MB per trial"
        )
    if args.json:
        args.json.write_text(json.dumps({"code": str(args.code), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
