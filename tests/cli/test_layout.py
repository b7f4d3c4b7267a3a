"""The package's shape: `tuner --help` stays light, and the public API is reachable from `tuner`."""

import json
import subprocess
import sys

from conftest import tuner_env

HEAVY = ("keras", "tensorflow", "jax", "optuna", "optuna_dashboard", "sklearn", "matplotlib")


def test_help_imports_neither_keras_nor_optuna_nor_the_dashboard():
    code = (
        "import json, sys\n"
        "from tuner.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=tuner_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--objectives" in result.stdout and "--budget" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_public_api_is_reexported_lazily():
    import tuner

    assert tuner.TunerError.exit_code == 2
    assert tuner.load_study_config("digits").dataset == "digits"
    assert set(tuner.__all__) >= {"StudyConfig", "TrialSpec", "cross_validate", "run_study", "load_dataset"}
