"""TensorFlow's start-up: notices off stderr, other lines in order, the command line's settings before the import."""

import os
import subprocess
import sys

import pytest
from conftest import tuner_env

from tuner.core.quiet_tensorflow import NOTICES, notices_kept_off_stderr


def test_the_notices_are_dropped_and_every_other_line_arrives_in_order(capfd):
    with notices_kept_off_stderr():
        os.write(2, f"W0000 port.cc:153] {NOTICES[1]}. You may see slightly different results\n".encode())
        os.write(2, b"a warning of the user's own\n")
        os.write(2, f"{NOTICES[0]}\n".encode())
        os.write(2, b"and one more\n")
    assert capfd.readouterr().err == "a warning of the user's own\nand one more\n"


def test_with_stderr_closed_the_block_still_runs():
    kept = os.dup(2)
    os.close(2)
    try:
        ran = []
        with notices_kept_off_stderr():
            ran.append(True)
    finally:
        os.dup2(kept, 2)
        os.close(kept)
    assert ran == [True]


@pytest.mark.slow
def test_a_process_that_installs_it_imports_tensorflow_with_onednn_on_and_nothing_on_stderr():
    code = (
        "from tuner.core import quiet_tensorflow; quiet_tensorflow.install()\n"
        "import os, tensorflow\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
    )
    env = {key: value for key, value in tuner_env().items() if key not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [], done.stderr


def test_the_command_line_gives_onednn_the_system_allocator_unless_told_otherwise():
    """TensorFlow reads the setting at import, so the command line sets it before anything imports TensorFlow."""
    code = (
        "import os\nfrom tuner.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('TF_ONEDNN_USE_SYSTEM_ALLOCATOR'), 'tensorflow' in __import__('sys').modules)\n"
    )
    for given, expected in ((None, "1 False"), ("0", "0 False")):
        env = {k: v for k, v in tuner_env().items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
        if given is not None:
            env["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] = given
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.stdout.strip().splitlines()[-1] == expected, done.stdout + done.stderr
