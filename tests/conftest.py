"""Shared test plumbing: run the real CLI in a subprocess, open the studies it made, small data fixtures.

Everything a test needs is in the repository or installed by `.ci/run`
(Debian's Fashion-MNIST, the databases, PostgreSQL's server programs,
Chromium): nothing is read from outside the checkout.

A test whose machine lacks one of those skips itself, with the fix in its
reason. Under CI (the environment variable CI set, as CI services and
`.ci/run` do) a skip is a failure instead: a CI machine missing a database
must not pass silently. The one exception is a test marked `tensorflow_only`
when the test process runs another Keras backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The machine's database servers (.ci/run's machine runs both): tests read them or make throwaway databases there,
# and never stop them (a test that stops or freezes a server starts its own, benchmarks/throwaway_postgres.py).
MACHINE_POSTGRES = os.environ.get("TUNER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MACHINE_MARIADB = "mysql+pymysql://root@127.0.0.1:3306/test"


def under_ci() -> bool:
    """Whether the environment variable CI is set (to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_database(url: str) -> None:
    """Skip the calling test (a failure under CI) unless the database at `url` answers a query now."""
    from tuner.storage.outages import database_answers

    if not database_answers(url):
        pytest.skip(f"no database answers at {url}; start it (.ci/run's machine runs PostgreSQL and MariaDB)")


# Fixtures that train a study or make files for a whole module or session. pytest-xdist runs such a fixture once in
# every worker process that runs a test using it, so the tests that use one run on one worker (an xdist_group named
# here), and the study is trained once rather than once per worker.
MADE_ONCE = {
    "digits_export": "digits-export",
    "two_objective_study": "two-objective-study",
    "exported": "dashboard-study",
    "bad_input_study": "bad-input-study",
    "bombs": "hostile-files",
    "tiny_model": "hostile-files",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, so that the suite's parallel workers (pytest-xdist) start the long ones early and end together.

    Tests that use a fixture of MADE_ONCE (and are in no group yet) join its group.
    Skip the `tensorflow_only` tests when this process's Keras backend is another (KERAS_BACKEND=jax pytest).
    """
    for item in items:
        shared = [group for name, group in MADE_ONCE.items() if name in getattr(item, "fixturenames", ())]
        if shared and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: each group keeps its order
    tensorflow_only = [item for item in items if item.get_closest_marker("tensorflow_only")]
    if not tensorflow_only:
        return
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        for item in tensorflow_only:
            item.add_marker(pytest.mark.skip(reason=f"needs Keras on TensorFlow in the test process, which runs {backend}"))


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_the_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped, and under CI={os.environ.get('CI')} a skip is a failure: {_skip_reason(report)} "
        "(.ci/run installs everything the tests need)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Under CI, a test that skips (in its set-up, body or teardown) fails, unless it is `tensorflow_only`."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and under_ci() and not hasattr(report, "wasxfail") and not item.get_closest_marker("tensorflow_only"):
        _fail_the_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under CI, a module that skips itself as a whole (pytest.skip(allow_module_level=True)) fails too."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and under_ci():
        _fail_the_skip(report)


# A test that fills a wall-clock budget: such tests run one after another on one xdist worker (`--dist loadgroup` in
# pyproject.toml), since side by side they left each other too little machine to judge anything in the time.
fills_a_wall_clock = pytest.mark.xdist_group("clock")


def tuner_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a person's shell would give `python -m tuner`, with this checkout importable."""
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **(extra or {})}


def run_tuner(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m tuner ARGS` in `cwd`, as a person would run it."""
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        env=tuner_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def assert_one_line_error(result, *fragments: str) -> None:
    """Exit 2, one line on stderr that names the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache_in_tmp(tmp_path_factory):
    """JAX's compilation cache (tuner.training.compilation) in a folder of the test session, not in ~/.cache."""
    os.environ["TUNER_COMPILATION_CACHE"] = str(tmp_path_factory.mktemp("jax-compilation"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted for the test (needs root, as on CI and this project's machines)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    yield mount
    for _ in range(10):
        if subprocess.run(["umount", str(mount)]).returncode == 0:
            break
        time.sleep(0.5)


def fill(folder: Path) -> None:
    """Fill the file system under `folder` to the last byte (a file named `filler`)."""
    with (folder / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass


def requires_fashion():
    return pytest.mark.skipif(
        not FASHION_DIR.exists(), reason="Fashion-MNIST missing: apt-get install dataset-fashion-mnist"
    )


@pytest.fixture(scope="session")
def digits_28_npz(tmp_path_factory) -> Path:
    """scikit-learn's 1,797 digits as 28x28 uint8 images in an .npz of `x, y`: the layout of an MNIST subset."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * 255 / 16).round().astype("uint8")
    big = np.stack([np.asarray(Image.fromarray(image).resize((28, 28), Image.Resampling.BILINEAR)) for image in pixels])
    path = tmp_path_factory.mktemp("npz") / "digits-28.npz"
    np.savez(path, x=big, y=digits.target.astype("uint8"))
    return path


# --- Export and predict (tests/results/test_export.py, tests/results/test_predict.py) share one study and one export.

EXPORT_STUDY_AND_COUNT_TEST_READS = """
import json, sys, time
from tuner.core.study_file import load_study_config
from tuner.results.export_study import export_study
from tuner.run.pipeline import run_study
from tuner.storage.storages import artifact_store
url, out = sys.argv[1], sys.argv[2]
settings = {"trials": 2, "folds": 2, "epochs": 3, "pruner": "none", "baselines": ["seed000-v1", "seed000-v2"]}
config = load_study_config("digits", settings)
ran = run_study(config, started=time.time(), storage_url=url, progress=False)
assert not ran.interrupted and ran.exit_code == 0
exported = export_study(ran.study, config, artifact_store(url), 2, out)
budget_modules = sorted(name for name in sys.modules if name.startswith("tuner.budget"))
reads = {"after_study": ran.search_test_split_reads, "after_export": exported.test_split_reads}
print(json.dumps({**reads, "budget_modules": budget_modules}))
"""

RELOAD_IN_A_FRESH_PROCESS = """
import json, sys
import keras
from tuner.data import load_dataset
from tuner.results.export import evaluate
x_test, y_test = load_dataset("digits").test_split()
figures = {}
for path in sys.argv[2:]:
    model = keras.saving.load_model(path, safe_mode=True)
    result = evaluate(model, x_test, y_test)
    figures[path] = {"accuracy": result.accuracy, "loss": result.loss, "predictions": result.predictions.tolist()}
# a model whose Lambda layer runs arbitrary code: it writes a marker file whenever it is called
marker = sys.argv[1] + ".ran"
inputs = keras.Input((8, 8, 1))
hidden = keras.layers.Lambda(lambda t: (open(marker, "w").close(), t)[1])(inputs)
keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(hidden))).save(sys.argv[1])
print(json.dumps(figures))
"""


@pytest.fixture(scope="session")
def digits_export(tmp_path_factory):
    """A real digits study (2 seed baselines, 2 folds, 3 epochs) exported with --top 2, in one CLI process."""
    folder = tmp_path_factory.mktemp("export")
    url, out = f"sqlite:///{folder / 'study.db'}", folder / "models"
    made = subprocess.run(
        [sys.executable, "-c", EXPORT_STUDY_AND_COUNT_TEST_READS, url, str(out)],
        cwd=folder,
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert made.returncode == 0, made.stderr
    return {
        "folder": folder,
        "url": url,
        "out": out,
        "stdout": made.stdout,
        "reads": json.loads(made.stdout.strip().splitlines()[-1]),
    }


@pytest.fixture(scope="session")
def reloaded(digits_export):
    """Each exported .keras reloaded and evaluated in a fresh process; also writes lambda.keras."""
    models = sorted(str(p) for p in digits_export["out"].glob("*.keras"))
    lambda_model = digits_export["folder"] / "lambda.keras"
    result = subprocess.run(
        [sys.executable, "-c", RELOAD_IN_A_FRESH_PROCESS, str(lambda_model), *models],
        cwd=digits_export["folder"],
        env=tuner_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    Path(f"{lambda_model}.ran").unlink(missing_ok=True)  # building it ran the code; loading must not
    return {"figures": json.loads(result.stdout.strip().splitlines()[-1]), "lambda_model": lambda_model}
