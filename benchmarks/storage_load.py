"""Load benchmark: many simulated workers doing a study's bookkeeping, on PostgreSQL directly and through the proxy.

    python benchmarks/storage_load.py                       # 64 workers, 128 trials, both modes
    python benchmarks/storage_load.py --workers 8 --trials 16 --modes proxy

Each simulated worker is what `tuner worker` is without the training: its
own storage (its own connections, or its own gRPC channel), claiming trials
under the study lock within the study's budget, a heartbeat thread, then per
trial 50 `trial.report` + `trial.should_prune` (hyperband, the tuner's
default pruner), then `tell`. Every trial makes all its reports (the pruning
answer is asked for, not acted on), so both modes do the same work.

Everything runs on 127.0.0.1: a throwaway PostgreSQL server of its own
(benchmarks/throwaway_postgres.py, never the machine's), `tuner
storage-proxy` in its own process for the proxy mode, and the workers as
threads in a few processes. It reports, per mode: trials per second, the
99th-percentile latency of one report (report + should_prune), of a claim
and of a tell, the peak number of database connections the workers (or the
proxy) held (pg_stat_activity, by application name), and the count check:
every trial claimed was finished exactly once and nothing is left RUNNING.
Bounded: `--trials` in all and `--time-limit` seconds per mode, after which
workers stop claiming (their trial in flight is finished).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/storage_load.py` from a checkout
    sys.path.insert(0, str(REPO))

from benchmarks import throwaway_postgres  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
MODES = ("direct", "proxy")


# --------------------------------------------------------------------------- one simulated worker


def _setup(study_name: str, budget: int):
    def setup(storage):
        import optuna

        from tuner.core.study_file import load_study_config
        from tuner.count.strategy import settle_trial_quota
        from tuner.search.samplers import make_pruner

        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="maximize",
            pruner=make_pruner(load_study_config("fashion")),  # hyperband, as a real study
            sampler=optuna.samplers.RandomSampler(),
            load_if_exists=True,
        )
        settle_trial_quota(study, budget, budget)
        return study

    return setup


def _next_job(budget: int):
    """The trial-count strategy's rule for a shared quota, without the data a real strategy loads."""
    from tuner.count.strategy import finished_and_running
    from tuner.search.strategy import Job

    def next_job(study):
        finished, running = finished_and_running(study)
        if finished >= budget:
            return Job.DONE
        return Job.WAIT if finished + running >= budget else Job.RUN

    return next_job


def simulate_worker(url: str, study_name: str, budget: int, reports: int, deadline: float, seed: int) -> dict:
    """One worker's bookkeeping until the budget is met or the deadline passes; its timings and trial numbers."""
    import optuna
    from optuna.trial import TrialState

    from tuner.distributed.shared_study import SharedStudy
    from tuner.search.strategy import Job

    rng = random.Random(seed)
    shared = SharedStudy(url, study_name, say=lambda text: None)
    shared.join(_setup(study_name, budget))
    next_job = _next_job(budget)
    figures: dict[str, Any] = {"report": [], "claim": [], "tell": [], "trials": [], "started": [], "ended": []}
    while time.time() < deadline:
        began = time.time()
        claimed = shared.claim(next_job)
        if claimed is Job.DONE:
            break
        if claimed is Job.WAIT:  # the last slots run elsewhere
            time.sleep(0.05)
            continue
        figures["claim"].append(time.time() - began)
        trial: optuna.Trial = claimed
        trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        ceiling = rng.uniform(0.5, 0.95)
        with shared.beating(trial):
            for step in range(reports):
                at = time.perf_counter()
                trial.report(ceiling * (1 - math.exp(-(step + 1) / 8)), step)
                trial.should_prune()
                figures["report"].append(time.perf_counter() - at)
        at = time.perf_counter()
        told = shared.tell(trial, ceiling, TrialState.COMPLETE)
        figures["tell"].append(time.perf_counter() - at)
        assert told is not None and told.state == TrialState.COMPLETE
        figures["trials"].append(trial.number)
        figures["started"].append(began)
        figures["ended"].append(time.time())
    return figures


def simulate_workers(url: str, study_name: str, workers: int, budget: int, reports: int, deadline: float) -> list[dict]:
    """`workers` simulated workers as threads of this process."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats, the gRPC proxy: known
    results: list[dict] = [{} for _ in range(workers)]
    errors: list[str] = []

    def run(index: int) -> None:
        try:
            results[index] = simulate_worker(url, study_name, budget, reports, deadline, seed=os.getpid() * 1000 + index)
        except Exception as error:  # reported, and the count check fails
            errors.append(f"{type(error).__name__}: {error}")

    threads = []
    for index in range(workers):
        threads.append(threading.Thread(target=run, args=(index,)))
        threads[-1].start()
        time.sleep(0.02)  # a staggered start, as real workers have (and no schema-creation race)
    for thread in threads:
        thread.join()
    if errors:
        results.append({"errors": errors})
    return results


# --------------------------------------------------------------------------- one mode


def _with_name(url: str, application: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={application}"


class ConnectionCounter:
    """Samples pg_stat_activity every 0.2 s: the peak number of connections with one application name.

    It opens its one connection before the workers start, so a full
    connection table cannot lock it out.
    """

    def __init__(self, url: str, application: str):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(_with_name(url, "tuner-load-monitor"), poolclass=NullPool)
        self.connection = engine.connect()
        self.query = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        self.application, self.peak, self._stop = application, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def count(self) -> int:
        value = self.connection.execute(self.query, {"name": self.application}).scalar()
        self.connection.rollback()  # a fresh snapshot of pg_stat_activity next time
        return int(value or 0)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.count())

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()


def _start_proxy(database_url: str) -> tuple[subprocess.Popen, str]:
    port = throwaway_postgres.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner", "storage-proxy", "--storage", database_url, "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"grpc://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        line = process.stdout.readline() if process.stdout else ""
        if "storage proxy for" in line:
            return process, url
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the proxy did not start: {line}{process.communicate()[0]}")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def measure_mode(
    mode: str,
    database_url: str,
    workers: int,
    trials: int,
    reports: int = 50,
    processes: int = 0,
    time_limit: float = 300,
) -> dict:
    """One mode ("direct" or "proxy") on its own study: figures and the count check.

    `processes` = 0 runs the workers as threads of this process (the smoke
    test); otherwise they are spread over that many processes.
    """
    import optuna
    from optuna.trial import TrialState

    application = f"tuner-load-{mode}"
    url, proxy = _with_name(database_url, application), None
    if mode == "proxy":
        proxy, url = _start_proxy(url)
    study_name = f"load-{mode}-{os.getpid()}-{int(time.time())}"
    deadline = time.time() + time_limit
    try:
        with ConnectionCounter(database_url, application) as connections:
            started = time.time()
            if processes == 0:
                results = simulate_workers(url, study_name, workers, trials, reports, deadline)
            else:
                results = _in_processes(url, study_name, workers, trials, reports, deadline, processes)
            wall = time.time() - started
            after = connections.count()
    finally:
        proxy_cpu = None
        if proxy is not None:
            proxy_cpu = _cpu_seconds(proxy.pid)
            proxy.terminate()
            proxy.communicate(timeout=30)
    errors = [e for r in results for e in r.get("errors", [])]
    runs = [r for r in results if "trials" in r]
    reports_s = [s for r in runs for s in r["report"]]
    told = [n for r in runs for n in r["trials"]]
    stored = optuna.load_study(study_name=study_name, storage=database_url).get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in stored) for s in TrialState}
    first = min((s for r in runs for s in r["started"]), default=started)
    last = max((e for r in runs for e in r["ended"]), default=started)
    count_check = (
        len(told) == len(set(told)) == states["COMPLETE"]
        and states["RUNNING"] == states["WAITING"] == states["FAIL"] == 0
        and len(stored) == len(told)
        and (len(told) == trials or time.time() > deadline)
    )
    return {
        "mode": mode,
        "workers": workers,
        "processes": processes,
        "reports_per_trial": reports,
        "budget": trials,
        "trials_finished": len(told),
        "states": states,
        "count_check": bool(count_check),
        "workers_failed": len(errors),
        "workers_refused": sum("too many clients" in error for error in errors),  # by the full connection table
        "errors": sorted(set(errors))[:3],
        "wall_seconds": wall,
        "trials_per_second": len(told) / (last - first) if last > first else None,
        "report_p50_ms": 1000 * (_percentile(reports_s, 0.50) or math.nan),
        "report_p99_ms": 1000 * (_percentile(reports_s, 0.99) or math.nan),
        "claim_p99_ms": 1000 * (_percentile([s for r in runs for s in r["claim"]], 0.99) or math.nan),
        "tell_p99_ms": 1000 * (_percentile([s for r in runs for s in r["tell"]], 0.99) or math.nan),
        "peak_database_connections": connections.peak,
        "proxy_cpu_seconds": proxy_cpu,
        "database_connections_after": after,
    }


def _in_processes(
    url: str, study_name: str, workers: int, trials: int, reports: int, deadline: float, processes: int
) -> list[dict]:
    shares = [workers // processes + (i < workers % processes) for i in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--simulate", url, study_name, str(share), str(trials), str(reports), str(deadline)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
        if share
    ]
    results: list[dict] = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0 or not out.strip():
            results.append({"errors": [f"a worker process exited with {child.returncode}"]})
            continue
        results += json.loads(out.strip().splitlines()[-1])
    return results


# --------------------------------------------------------------------------- the table


def render(results: dict) -> str:
    machine = results["machine"]
    load = machine["load_average_at_start"]
    shown_load = f"{load[0]:.1f}" if load else "?"
    lines = [
        f"storage load: {results['workers']} simulated workers ({results['processes']} processes), "
        f"{results['trials']} trials x {results['reports']} reports; PostgreSQL {results['postgres']} on 127.0.0.1",
        f"machine: {machine['cpu']}, {machine['cores']} cores, load average {shown_load} at start; {machine['date']}",
        "",
        "| max_connections | mode | workers running | trials/s | report p50 ms | report p99 ms | claim p99 ms "
        "| tell p99 ms | peak DB connections | proxy CPU s | count check |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in results["modes"]:
        check = "ok" if f["count_check"] else f"FAILED {f['states']}"
        check += f" ({f['trials_finished']} of {f['budget']} finished once)"
        running = f"{f['workers'] - f['workers_failed']} of {f['workers']}"
        if f["workers_failed"]:
            refused = f["workers_refused"] == f["workers_failed"]
            running += " (the others: too many clients)" if refused else f" ({f['errors'][0][:80]})"
        cpu = "-" if f.get("proxy_cpu_seconds") is None else f"{f['proxy_cpu_seconds']:.0f}"
        rate = f"{f['trials_per_second']:.2f}" if f["trials_per_second"] else "-"
        lines.append(
            f"| {f.get('max_connections', '?')} | {f['mode']} | {running} | {rate} | {f['report_p50_ms']:.1f} "
            f"| {f['report_p99_ms']:.1f} | {f['claim_p99_ms']:.0f} | {f['tell_p99_ms']:.0f} "
            f"| {f['peak_database_connections']} | {cpu} | {check} |"
        )
    return "\n".join(lines)


def _header(args: argparse.Namespace, machine: dict, version: str) -> dict:
    return {
        "machine": machine,
        "workers": args.workers,
        "processes": args.processes,
        "trials": args.trials,
        "reports": args.reports,
        "postgres": version,
        "command": "python benchmarks/storage_load.py " + " ".join(sys.argv[1:]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--trials", type=int, default=128, help="the study's budget (per mode)")
    parser.add_argument("--reports", type=int, default=50)
    parser.add_argument("--processes", type=int, default=4, help="worker processes the workers are spread over")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds per mode before workers stop claiming")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--max-connections",
        default="400,100",
        help="the throwaway server's max_connections, one server per value (100 is PostgreSQL's default)",
    )
    parser.add_argument("--simulate", nargs=6, help=argparse.SUPPRESS)  # a worker process: URL NAME N BUDGET REPORTS END
    args = parser.parse_args()
    if args.simulate:
        url, name, workers, budget, reports, deadline = args.simulate
        print(json.dumps(simulate_workers(url, name, int(workers), int(budget), int(reports), float(deadline))))
        return 0
    from benchmarks.run import machine_info

    if not throwaway_postgres.available():
        print("PostgreSQL's server programs (initdb, pg_ctl) are not installed: nothing to measure", file=sys.stderr)
        return 2
    machine = machine_info()
    modes = []
    for limit in [int(value) for value in args.max_connections.split(",")]:
        with throwaway_postgres.ThrowawayPostgres(max_connections=limit) as server:
            for mode in args.modes.split(","):
                figures = measure_mode(
                    mode, server.url(), args.workers, args.trials, args.reports, args.processes, args.time_limit
                )
                modes.append({"max_connections": limit, **figures})
                print(render({**_header(args, machine, server.version()), "modes": modes[-1:]}).splitlines()[-1])
            version = server.version()
    machine["load_average_at_end"] = os.getloadavg()
    results = {**_header(args, machine, version), "modes": modes}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "storage_load.json").write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    return 0 if all(m["count_check"] for m in modes) else 1  # a refused worker is a figure, not a failure


if __name__ == "__main__":
    raise SystemExit(main())
