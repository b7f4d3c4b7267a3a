"""The storage load benchmark's smallest piece: 2 simulated workers, 2 trials, directly and through the proxy."""

import pytest

from benchmarks import storage_load, throwaway_postgres


@pytest.fixture(scope="module")
def postgres():
    if not throwaway_postgres.available():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    with throwaway_postgres.ThrowawayPostgres() as server:
        yield server


@pytest.mark.parametrize("mode", storage_load.MODES)
def test_two_workers_finish_two_trials_once_each(postgres, mode):
    figures = storage_load.measure_mode(mode, postgres.url(), workers=2, trials=2, reports=3, time_limit=60)
    assert figures["count_check"] and figures["workers_failed"] == 0, figures
    assert figures["trials_finished"] == 2 and figures["states"]["COMPLETE"] == 2
    assert figures["trials_per_second"] > 0 and 0 < figures["report_p50_ms"] <= figures["report_p99_ms"]
    assert figures["peak_database_connections"] >= 1  # the workers' (direct) or the proxy's, by application name
    table = storage_load.render(
        {
            "machine": {"cpu": "x", "cores": 2, "load_average_at_start": None, "date": "d"},
            "workers": 2,
            "processes": 0,
            "trials": 2,
            "reports": 3,
            "postgres": "15",
            "modes": [figures],
        }
    )
    assert f"| {mode} | 2 of 2 |" in table and "ok (2 of 2 finished once)" in table
