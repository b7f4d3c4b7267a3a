"""Storage URLs: passwords never shown, drivers chosen, files found beside their storage (no server needed)."""

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.core.errors import TunerError
from tuner.storage import preflight
from tuner.storage.storages import open_storage
from tuner.storage.urls import (
    MaskedStream,
    artifact_dir,
    file_path,
    grpc_address,
    mask_secrets,
    mask_url,
    normalize_url,
    url_secrets,
)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://tuner:secret@db:5432/t", "postgresql://tuner:***@db:5432/t"),
        ("postgresql://tuner:p%40ss@db/t", "postgresql://tuner:***@db/t"),
        ("mysql+pymysql://root:s3cr@t@db/t", "mysql+pymysql://root:***@db/t"),
        ("mysql://u@db/t?password=hunter2&x=1", "mysql://u@db/t?password=***&x=1"),
        ("sqlite:///tuner.db", "sqlite:///tuner.db"),
        ("postgresql://tuner:pa/ss0rd@db:5432/t", "postgresql://tuner:***@db:5432/t"),
        ("postgresql://tuner:pa#ss0rd@db/t", "postgresql://tuner:***@db/t"),
        ("postgresql://tuner:pa?ss0rd@db/t?sslmode=require", "postgresql://tuner:***@db/t?sslmode=require"),
        ("postgresql://tuner:pa:ss@0rd@db/t", "postgresql://tuner:***@db/t"),
        ("mysql+pymysql://u:a/#?:@b@127.0.0.1:3306/t", "mysql+pymysql://u:***@127.0.0.1:3306/t"),
        ("postgresql://u:100%pure@[::1]:5432/t", "postgresql://u:***@[::1]:5432/t"),
        ("postgresql:/tuner:Secret@db/t", "postgresql:/tuner:***@db/t"),
        ("postgresql:///tuner:Secret@db/t", "postgresql:///tuner:***@db/t"),
        ("mysql://u@db/t?password=a/b#c&x=1", "mysql://u@db/t?password=***&x=1"),
        ("sqlite:////home/a:b@c/x.db", "sqlite:////home/a:b@c/x.db"),  # a path, not credentials
        ("grpc://proxy:13000", "grpc://proxy:13000"),
    ],
)
def test_passwords_are_masked(url, shown):
    assert mask_url(url) == shown


PASSWORD = "pa/ss#1?x:y@z%"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://tuner:{PASSWORD}@db:5432/t",
        f"postgresql:/tuner:{PASSWORD}@db:5432/t",
        f"mysql+pymysql://tuner:{PASSWORD}@127.0.0.1:3306/t",
        f"mysql://tuner@db/t?password={PASSWORD}",
    ],
)
def test_every_form_of_a_password_is_hidden_in_text_and_known_as_a_secret(url):
    message = f"cannot open storage '{url}': access denied for {PASSWORD} (see {url})"
    quoted = f"cannot open storage '{url}' (see {url}, {url.replace('//', '/', 1)})"
    for shown in (mask_url(quoted), mask_secrets(message, url)):
        assert "pa/ss" not in shown and "x:y@z" not in shown, shown
    assert PASSWORD in url_secrets(url) and "pa%2Fss%231%3Fx%3Ay%40z%25" in url_secrets(url)  # as SQLAlchemy gets it
    written = io.StringIO()
    MaskedStream(written, url_secrets(url)).write(message)
    assert "pa/ss" not in written.getvalue()


def test_an_unencoded_password_reaches_sqlalchemy_whole():
    import sqlalchemy

    url = normalize_url(f"mysql://tuner:{PASSWORD}@127.0.0.1:3306/t?charset=utf8mb4")
    parsed = sqlalchemy.engine.make_url(url)
    assert (parsed.drivername, parsed.username, parsed.password) == ("mysql+pymysql", "tuner", PASSWORD)
    assert (parsed.host, parsed.port, parsed.database) == ("127.0.0.1", 3306, "t")
    assert dict(parsed.query) == {"charset": "utf8mb4"}
    encoded = sqlalchemy.engine.make_url(normalize_url("postgresql://u:p%40ss@db/t"))
    assert encoded.password == "p@ss"  # an encoded password stays as it was


def test_a_url_with_one_slash_is_refused_with_its_password_hidden():
    with pytest.raises(TunerError, match="has one slash") as raised:
        preflight.check_url(normalize_url("postgresql:/tuner:Secret@db/t"))
    assert "Secret" not in str(raised.value) and "postgresql://tuner:***@db/t" in str(raised.value)
    with pytest.raises(TunerError, match="write sqlite:///x.db"):
        preflight.check_url("sqlite:/x.db")


def test_a_drivers_message_loses_the_password_wherever_it_appears():
    url = "postgresql://who:p%40ss@host/db"
    message = 'connection failed for user "who" with password p@ss (host=host)'
    assert "p@ss" not in mask_secrets(message, url) and "***" in mask_secrets(message, url)


def test_plain_database_urls_get_the_installed_driver():
    assert normalize_url("postgresql://u@h/d").startswith("postgresql+psycopg://")
    assert normalize_url("mysql://u@h/d").startswith("mysql+pymysql://")
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_files_behind_urls_and_artifacts_beside_them(monkeypatch):
    monkeypatch.delenv("TUNER_ARTIFACTS", raising=False)
    assert file_path("sqlite:///runs/t.db") == "runs/t.db" and file_path("journal:///tmp/s.log") == "/tmp/s.log"
    assert file_path("runs/s.log") == "runs/s.log" and file_path("postgresql://h/d") is None
    assert file_path("journal:////tmp/s.log") == "/tmp/s.log" and file_path("journal://runs/s.log") == "runs/s.log"
    assert artifact_dir("sqlite:///runs/t.db") == Path("runs/t-artifacts")
    assert artifact_dir("postgresql://h/d") == Path("tuner-artifacts")
    monkeypatch.setenv("TUNER_ARTIFACTS", "/srv/artifacts")
    assert artifact_dir("postgresql://h/d") == Path("/srv/artifacts")
    assert grpc_address("grpc://proxy:13001") == ("proxy", 13001) and grpc_address("sqlite:///x") is None


def test_a_url_that_is_no_url_is_one_line():
    with pytest.raises(TunerError, match="is not a URL"):
        open_storage("not-a-url")


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("postgressql://u:pw@h/db", "storage kind 'postgressql'"),
        ("sqlit:///x.db", "storage kind 'sqlit'"),
        ("sqlite://x.db", "three slashes"),
        ("x.db", "is not a URL"),
    ],
)
def test_misspelt_urls_are_named_before_any_driver_sees_them(url, fragment):
    with pytest.raises(TunerError, match=re.escape(fragment)) as raised:
        preflight.check_url(url)
    assert ":pw@" not in str(raised.value)


@pytest.mark.parametrize(
    "url, slip",
    [
        ("sqlite:///x.db", "sqlite://x.db"),
        ("sqlite:////abs/x.db", "sqlit:////abs/x.db"),
        ("postgresql+psycopg://u@h/db", "postgresq+psycopg://u@h/db"),
        ("mysql+pymysql://u@h/db", "mysq+pymysql://u@h/db"),
        ("journal:///x.log", "journl:///x.log"),
        ("grpc://proxy:13001", "grcp://proxy:13001"),
        ("a.log", "a.txt"),
    ],
)
def test_good_urls_pass_the_preflight_and_a_one_letter_slip_of_each_does_not(url, slip):
    assert preflight.check_url(url) is None  # no error: accepted as it is
    with pytest.raises(TunerError, match="three slashes|storage kind|is not a URL"):
        preflight.check_url(slip)  # so the preflight told them apart, not waved everything through


def test_damaged_files_are_refused_and_left_as_they_were(tmp_path):
    journal = tmp_path / "study.log"
    journal.write_text('{"op_code": 0, "worker_id": "w"}\n{"op_code": 5, "trial_id": 0, "va')
    with pytest.raises(TunerError, match="damaged at its last line"):
        preflight.check_file(f"journal:///{journal}")
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    with pytest.raises(TunerError, match="is not an SQLite database"):
        preflight.check_file(f"sqlite:///{garbage}")
    with pytest.raises(TunerError, match="does not exist"):
        preflight.check_file(f"sqlite:///{tmp_path}/absent/x.db")
    assert journal.read_text().endswith('"va') and garbage.read_text() == "not a database"


def test_a_masked_stream_never_writes_the_password():
    written = io.StringIO()
    stream = MaskedStream(written, url_secrets("postgresql://u:p%40ss@h/db"))
    stream.write("connecting with p@ss and p%40ss\n")
    assert written.getvalue() == "connecting with *** and ***\n"


LEAKY_COMMAND = """
import logging, sys
import optuna
import tuner.cli as cli

def leaky(args):  # stands for a library that logs the URL, then a bug that puts it in a traceback
    optuna.logging.get_logger("optuna").warning("connecting to %s", args.storage)
    logging.getLogger("sqlalchemy.engine").warning("engine %s", args.storage)
    print("plain print of", args.storage)
    raise RuntimeError(f"driver failed on {args.storage}")

cli.COMMAND_FUNCTIONS["report"] = leaky
logging.basicConfig()
sys.exit(cli.main(["report", "digits", "--storage", "postgresql://u:S3cret%21pw@db/t"]))
"""


def test_every_line_a_command_prints_masks_the_password_even_a_traceback():
    result = subprocess.run([sys.executable, "-c", LEAKY_COMMAND], capture_output=True, text=True, timeout=120)
    printed = result.stdout + result.stderr
    assert result.returncode == 1 and "RuntimeError: driver failed on postgresql://u:***@db/t" in printed
    assert "connecting to postgresql://u:***@db/t" in printed and "plain print of postgresql://u:***@db/t" in printed
    assert "S3cret" not in printed


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        (["report", "digits", "--storage", "postgresql:/who:pa/ss#1@127.0.0.1:1/none"], {}, "has one slash"),
        (
            ["report", "digits", "--storage=postgresql://who:pa/ss#1@127.0.0.1:1/none"],
            {},
            "postgresql://who:***@127.0.0.1:1",
        ),
        (["worker", "digits", "--trials", "1"], {"TUNER_STORAGE": "postgresql://who:pa/ss#1@127.0.0.1:1/none"}, "who:***@"),
        (["storage-proxy"], {"TUNER_STORAGE": ""}, "needs the database: --storage URL, or the URL in $TUNER_STORAGE"),
    ],
)
def test_a_command_never_prints_a_password_given_in_any_form(tmp_path, args, env, fragment):
    """On the command line or in $TUNER_STORAGE (which `tuner worker` reads when --storage is absent)."""
    from conftest import assert_one_line_error, run_tuner

    result = run_tuner(*args, cwd=tmp_path, env=env, timeout=120)
    assert_one_line_error(result, fragment)
    assert "pa/ss" not in result.stdout + result.stderr and "ss#1" not in result.stderr


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("not-a-url", "is not a URL"),
        ("nosuchdb://x/y", "storage kind 'nosuchdb'"),
        ("sqlite:////absent/x.db", "does not exist"),
        ("postgresql+psycopg://who:pw@127.0.0.1:1/none", "cannot open storage"),  # no server there
        ("postgresql+psycopg://nobody@127.0.0.1:5432/no_such_database", "cannot open storage"),  # this machine's server
    ],
)
def test_a_bad_storage_url_is_refused_before_the_data_and_keras_load(url, fragment):
    # Keras and TensorFlow take seconds to import: a typo in --storage is answered at once, without them
    code = (
        f"import sys\nfrom tuner.cli import main\nstatus = main(['digits', '--storage', {url!r}])\n"
        "print(status, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tuner: error:") and fragment in line
