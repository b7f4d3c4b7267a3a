"""A journal file cut mid-record, mended: the cut records removed, every whole one kept, the damaged file copied aside.

Optuna's journal file (JournalFileBackend) holds one JSON record a line,
each write appended under the journal's lock. A writer stopped by a full
disk, or killed, leaves part of a record: at the end of the file, or --
once others appended after it -- glued in front of the next record on the
same line. Optuna skips a cut last line but then loses the next record
appended onto it, and stops reading at a cut line in the middle, so the
study cannot be opened at all.

No reader ever applied a cut record (its writer saw the write fail), so
removing it changes nothing anyone saw; a whole record glued behind one was
written by a writer that saw it succeed, so it is kept. `tuner
repair-journal FILE` mends under the journal's own lock, rewrites bytes
only from the first damaged line on (what a live reader read before it
keeps its place), and first copies the damaged file to
`FILE.damaged-YYYYmmdd-HHMMSS`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tuner.core.errors import TunerError

_RECORD_START = b'{"'


@dataclass
class Damage:
    """Where a journal is cut: 1-based numbers of damaged lines (the last one may lack its newline)."""

    lines: list[int]
    line_count: int

    @property
    def last_line_only(self) -> bool:
        return self.lines == [self.line_count]


def _record(line: bytes) -> bool:
    try:
        return isinstance(parsed := json.loads(line), dict) and "op_code" in parsed
    except ValueError:
        return False


def _whole_tail(line: bytes) -> bytes | None:
    """The whole record a cut one was glued in front of, if any: the longest tail of `line` that is one."""
    start = line.find(_RECORD_START, 1)
    while start != -1:
        if _record(line[start:]):
            return line[start:]
        start = line.find(_RECORD_START, start + 1)
    return None


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    """The newline-ended lines (without it) and what follows the last newline (a cut record, or b"")."""
    *lines, tail = data.split(b"\n")
    return lines, tail


def find_damage(data: bytes) -> Damage | None:
    """Where `data` (a journal file's bytes) is cut, or None when every line is a whole record."""
    lines, tail = _lines(data)
    damaged = [number for number, line in enumerate(lines, 1) if not _record(line)]
    count = len(lines) + (1 if tail else 0)
    if tail:
        damaged.append(count)
    return Damage(damaged, count) if damaged else None


def journal_damage(path: Path) -> Damage | None:
    """Where the journal file at `path` is cut, or None; read again under the journal's lock before it says so.

    Without the lock a writer's record in flight looks cut; under it, none is.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    if find_damage(path.read_bytes()) is None:
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        return find_damage(path.read_bytes())
    finally:
        lock.release()


def mend(data: bytes) -> tuple[bytes, int, int]:
    """`data` with its cut records removed: (mended bytes, records removed, whole records kept from cut lines)."""
    lines, tail = _lines(data)
    kept: list[bytes] = []
    removed, rescued = (1 if tail else 0), 0
    for line in lines:
        if _record(line):
            kept.append(line)
            continue
        removed += 1
        whole = _whole_tail(line)
        if whole is not None:
            kept.append(whole)
            rescued += 1
    return b"".join(line + b"\n" for line in kept), removed, rescued


def repair_journal(path: str | Path) -> str:
    """Mend the journal file at `path` in place (see the module's docstring); the line that says what was done."""
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(path)
    if not path.is_file():
        raise TunerError(f"journal file {path} does not exist; give the path of a study's journal (a .log file)")
    lock = JournalFileSymlinkLock(str(path))  # the lock every journal writer takes (Optuna's default)
    lock.acquire()
    try:
        data = path.read_bytes()
        damage = find_damage(data)
        if damage is None:
            return f"journal file {path} is whole ({record_count(data)} records); nothing to repair"
        copy = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, copy)
        mended, removed, rescued = mend(data)
        first = _offset_of_line(data, damage.lines[0])
        with path.open("r+b") as file:  # bytes before the first damaged line stay where they are
            file.seek(first)
            file.write(mended[first:])
            file.truncate()
            file.flush()
            os.fsync(file.fileno())
    finally:
        lock.release()
    kept = f", {rescued} whole record(s) behind them kept" if rescued else ""
    return (
        f"journal file {path} repaired: {removed} cut record(s) removed at line(s) "
        f"{', '.join(map(str, damage.lines))}{kept}; the damaged file is kept as {copy}"
    )


def record_count(data: bytes) -> int:
    """How many records a whole journal holds."""
    return len(_lines(data)[0])


def _offset_of_line(data: bytes, number: int) -> int:
    """The byte offset where line `number` (1-based) starts."""
    offset = 0
    for _ in range(number - 1):
        offset = data.index(b"\n", offset) + 1
    return offset
