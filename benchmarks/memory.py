"""Memory over a long study: RSS of one `tuner` process across 50 trials, as `run` and as one `worker`.

    python benchmarks/memory.py                      # 50 trials, run and worker, this checkout
    python benchmarks/memory.py --trials 20 --modes run
    python benchmarks/memory.py --code /path/to/other/checkout   # the same measurement of another version
    python benchmarks/memory.py --code /path/to/other/checkout --code .   # both, one after the other

The study is the issue's: `digits --folds 2 --epochs 2 --baselines none
--pruner none`, so every trial builds, trains and drops two new models.
RSS is read from /proc twice a second, beside the count of finished
trials in the study's journal file. Reported: RSS once 2 trials have
finished (imports and first compilations done), once the last has, the
growth between them, and the growth per trial. The seconds printed are
context, not a speed figure: after the sampler's first random draws each
run draws other configurations, since the trials' values differ run to run.
Goal (issue 14): <= 200 MB over 50 trials.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.5
STUDY = ["digits", "--folds", "2", "--epochs", "2", "--baselines", "none", "--pruner", "none"]


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def finished_trials(journal: Path) -> int:
    """How many trials the study in `journal` has finished (complete, pruned or failed)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not journal.exists():
        return 0
    try:
        study = optuna.load_study(study_name="digits", storage=JournalStorage(JournalFileBackend(str(journal))))
    except KeyError:  # not created yet
        return 0
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def measure(mode: str, trials: int, code: Path) -> dict:
    """Run the study in one process; sample its RSS each time another trial has finished."""
    folder = Path(tempfile.mkdtemp(prefix=f"memory-{mode}-"))
    journal = folder / "study.log"
    command = ["run", *STUDY, "--no-progress"] if mode == "run" else ["worker", *STUDY]
    command += ["--trials", str(trials), "--storage", f"journal:///{journal}"]
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "tuner", *command], cwd=folder, env=env, stdout=subprocess.DEVNULL)
    samples: dict[int, float] = {}  # finished trials -> RSS (MB) when that count was first seen
    while process.poll() is None:
        time.sleep(POLL_SECONDS)
        try:
            rss = rss_mb(process.pid)
        except (FileNotFoundError, RuntimeError):
            break
        samples.setdefault(finished_trials(journal), rss)
    process.wait()
    counts = sorted(n for n in samples if n >= 2)
    if process.returncode != 0 or len(counts) < 2:
        raise SystemExit(f"{mode}: exit {process.returncode} with {len(counts)} samples")
    after_2, last = samples[counts[0]], samples[counts[-1]]
    return {
        "mode": mode,
        "trials": finished_trials(journal),
        "first_sample_trials": counts[0],
        "last_sample_trials": counts[-1],
        "rss_first_mb": round(after_2, 1),
        "rss_last_mb": round(last, 1),
        "peak_mb": round(max(samples.values()), 1),
        "growth_mb": round(last - after_2, 1),
        "growth_per_trial_mb": round((last - after_2) / max(1, counts[-1] - counts[0]), 2),
        "seconds": round(time.monotonic() - started, 1),
        "samples": {n: round(samples[n], 1) for n in sorted(samples)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--modes", default="run,worker", help="run, worker or both (comma-separated)")
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="a checkout whose tuner to measure (default: this one); given twice or more, each in turn, mode by mode",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    codes = [code.resolve() for code in args.code or [REPO]]
    results = [{**measure(mode, args.trials, code), "code": str(code)} for mode in args.modes.split(",") for code in codes]
    for r in results:
        print(
            f"{r['mode']:>6} {r['code']}: {r['trials']} trials in {r['seconds']:.0f}s; RSS {r['rss_first_mb']:.0f} MB after "
            f"{r['first_sample_trials']} trials -> {r['rss_last_mb']:.0f} MB after {r['last_sample_trials']} "
            f"(peak {r['peak_mb']:.0f}): growth {r['growth_mb']:+.0f} MB, {r['growth_per_trial_mb']:+.2f} MB per trial"
        )
    if args.json:
        args.json.write_text(json.dumps({"codes": [str(code) for code in codes], "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
