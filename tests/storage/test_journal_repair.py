"""A journal file cut mid-record (a full disk, a killed writer) is refused in one line and mended by the command it names.

The journals are real: Optuna writes a study's records, the test cuts one
at several offsets, and live writers' handles (opened before the cut)
append after it, as running workers do once space is free again.
"""

from __future__ import annotations

import optuna
import pytest
from conftest import assert_one_line_error, fill, run_tuner
from optuna.storages.journal import JournalFileBackend

from tuner.storage.journal_repair import find_damage

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _storage(path):
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _journal(path) -> list:
    """A study 'digits' with three finished trials; returns their (number, state, value, params)."""
    study = optuna.create_study(study_name="digits", storage=_storage(path), direction="maximize")
    for index in range(3):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        study.tell(trial, 0.5 + index / 10)
    return _trials(path)


def _trials(path) -> list:
    study = optuna.load_study(study_name="digits", storage=_storage(path))
    return [(t.number, t.state, t.value, t.params) for t in study.trials]


def _repair(path, tmp_path) -> str:
    result = run_tuner("repair-journal", str(path), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("cut", [1, 17, 0.5, -1])
def test_a_cut_last_record_is_removed(tmp_path, cut):
    path = tmp_path / "study.log"
    before = _journal(path)
    whole = path.read_bytes()
    last = whole.rstrip(b"\n").rfind(b"\n") + 1  # where the last record's line starts
    line = len(whole) - last
    keep = last + (int(line * cut) if isinstance(cut, float) else cut if cut > 0 else line - 1)  # -1: all but "\n"
    path.write_bytes(whole[:keep])
    assert find_damage(path.read_bytes()) is not None

    said = _repair(path, tmp_path)
    assert "1 cut record(s) removed" in said and "study.log.damaged-" in said
    assert path.read_bytes() == whole[:last]  # the whole records, byte for byte
    assert _trials(path) == [*before[:2], (2, optuna.trial.TrialState.RUNNING, None, before[2][3])]
    copy = next(tmp_path.glob("study.log.damaged-*"))
    assert copy.read_bytes() == whole[:keep]  # the damaged file, as it was
    assert "nothing to repair" in _repair(path, tmp_path)


@pytest.mark.parametrize("cut", [1, 30, 0.5, 1.0])
def test_a_cut_record_with_others_appended_after_it_is_removed_and_theirs_kept(tmp_path, cut):
    path = tmp_path / "study.log"
    before = _journal(path)
    writers = [optuna.load_study(study_name="digits", storage=_storage(path)) for _ in range(3)]  # live workers
    whole = path.read_bytes()
    record = whole.rstrip(b"\n").rsplit(b"\n", 1)[-1]  # a dead writer was writing a record like the last one
    fragment = record[: int(len(record) * cut) if isinstance(cut, float) else cut]  # 1.0: all of it but "\n"
    path.write_bytes(whole + fragment)
    for index, writer in enumerate(writers):  # their records land; Optuna then fails to read past the cut
        try:
            writer.set_user_attr(f"after{index}", index)
        except ValueError:
            pass
    damaged = path.read_bytes()
    with pytest.raises(ValueError):
        _trials(path)  # Optuna alone cannot open the study any more
    assert find_damage(damaged).lines == [len(whole.splitlines()) + 1]

    said = _repair(path, tmp_path)
    assert "1 cut record(s) removed" in said and "1 whole record(s) behind them kept" in said
    assert path.read_bytes().startswith(whole)  # what live readers read before the cut did not move
    assert _trials(path) == before
    study = optuna.load_study(study_name="digits", storage=_storage(path))
    assert study.user_attrs == {"after0": 0, "after1": 1, "after2": 2}


@pytest.mark.slow
def test_tuner_refuses_a_cut_journal_in_one_line_naming_the_repair(tmp_path):
    path = tmp_path / "study.log"
    _journal(path)
    whole = path.read_bytes()
    writer = optuna.load_study(study_name="digits", storage=_storage(path))
    path.write_bytes(whole + b'{"op_code":5,"worker_id":"de')
    writer.set_user_attr("after", 1)
    path.write_bytes(path.read_bytes() + whole.splitlines(keepends=True)[-1])  # another record after it
    for url in (f"journal:///{path}", str(path)):
        result = run_tuner("report", "digits", "--storage", url, cwd=tmp_path, timeout=120)
        assert_one_line_error(result, f"journal file {path} is damaged at line(s)", f"tuner repair-journal {path}")
    _repair(path, tmp_path)
    result = run_tuner("report", "digits", "--storage", f"journal:///{path}", cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "damaged" not in result.stderr, result.stderr
    assert "# Study digits" in result.stdout, result.stdout[:500]  # the repaired study reads as a study


def test_a_journal_cut_by_a_full_disk_is_refused_then_repaired(small_disk, tmp_path):
    """A real cut: a record written onto a full tmpfs stops mid-way; the tuner names the repair, which restores the study."""
    path = small_disk / "study.log"
    before = _journal(path)
    whole = path.read_bytes()
    study = optuna.load_study(study_name="digits", storage=_storage(path))
    fill(small_disk)
    with pytest.raises(OSError):  # the file's last page takes part of the record, then the disk is full
        study.set_user_attr("notes", "x" * 20_000)
    assert len(path.read_bytes()) > len(whole) and not path.read_bytes().endswith(b"\n")
    (small_disk / "filler").unlink()  # space freed again

    result = run_tuner("report", "digits", "--storage", f"journal:///{path}", cwd=tmp_path, timeout=120)
    assert_one_line_error(result, "is damaged at its last line", f"tuner repair-journal {path}")
    assert "1 cut record(s) removed" in _repair(path, tmp_path)
    assert path.read_bytes() == whole and _trials(path) == before
