"""Crash-safe files: each file is written under a temporary name and renamed into place.

A process killed while writing (or a full disk) then leaves no file that
looks complete: only a hidden `.NAME.partial-PID.SUFFIX`, which the next
export or pretraining into that folder removes once process PID is gone.
The temporary name keeps the suffix, since Keras and NumPy choose the
format by it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from tuner.core.errors import TunerError, causes

PARTIAL_PID = re.compile(r"\.partial-(?:old-)?(\d+)(?:\.[^.]*)?$")  # the writer's PID in `.NAME.partial-PID.SUFFIX`


def partial_path(path: Path) -> Path:
    """The temporary name `path` is written under."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block has written it, flush it and rename it to `path`.

    If the block fails, the temporary file is removed and `path` keeps what
    it held before. A full disk becomes one TunerError line.
    """
    path = Path(path)
    temporary = partial_path(path)
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, Exception) and disk_full(error):
            raise TunerError(f"no space left on the device for {path}; free some space or write elsewhere (--out)") from None
        raise


@contextlib.contextmanager
def replacing_folder(path: str | Path) -> Iterator[Path]:
    """`replacing` for a folder (a SavedModel): written under a temporary name, its files flushed, then renamed.

    A folder cannot be renamed over a full one, so an old `path` is first
    renamed aside and removed after; a crash between the renames leaves the
    new folder under its temporary name (removed by the next export), never a
    half-written folder under `path`.
    """
    path = Path(path)
    temporary = partial_path(path)
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        yield temporary
        for file in (f for f in temporary.rglob("*") if f.is_file()):
            _fsync(file)
        old = path.with_name(f".{path.stem}.partial-old-{os.getpid()}{path.suffix}")
        if path.exists():
            os.replace(path, old)
        os.replace(temporary, path)
        _fsync(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, Exception) and disk_full(error):
            raise TunerError(f"no space left on the device for {path}; free some space or write elsewhere (--out)") from None
        raise


def writer_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_partials(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders that killed writers left in `folder`; returns them.

    One whose writer (the PID in its name) still runs on this host is another process's write in progress,
    and stays.
    """
    stale = []
    for path in Path(folder).glob(".*.partial-*"):
        writer = PARTIAL_PID.search(path.name)
        if writer and writer_alive(int(writer.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        stale.append(path)
    return stale


def sha256_of(path: str | Path) -> str:
    """The file's SHA-256, so a card names exactly the model file it describes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def disk_full(error: BaseException) -> bool:
    """Whether `error`, or an error behind it, says the disk is full (an OSError, or SQLite's own words)."""
    for seen in causes(error):
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(seen) or "No space left on device" in str(seen):
            return True
    return False


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` crash-safely; returns the path."""
    with replacing(path) as temporary:
        temporary.write_text(text)
    return Path(path)
