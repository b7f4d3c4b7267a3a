"""Storage URLs: passwords never shown, drivers chosen, files found beside their storage (no server needed)."""

from pathlib import Path

import pytest

from tuner.core.errors import TunerError
from tuner.storage.storages import open_storage
from tuner.storage.urls import artifact_dir, file_path, grpc_address, mask_secrets, mask_url, normalize_url


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://tuner:secret@db:5432/t", "postgresql://tuner:***@db:5432/t"),
        ("postgresql://tuner:p%40ss@db/t", "postgresql://tuner:***@db/t"),
        ("mysql+pymysql://root:s3cr@t@db/t", "mysql+pymysql://root:***@db/t"),
        ("mysql://u@db/t?password=hunter2&x=1", "mysql://u@db/t?password=***&x=1"),
        ("sqlite:///tuner.db", "sqlite:///tuner.db"),
    ],
)
def test_passwords_are_masked(url, shown):
    assert mask_url(url) == shown


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
