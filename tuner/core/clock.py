"""When this process started: a budget counts from the command's start, interpreter start-up and imports included."""

from __future__ import annotations

import os
import time
from pathlib import Path


def process_start_time() -> float:
    """The process's start as time.time() would have said it (Linux /proc), else now."""
    try:
        fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat(5): start time in clock ticks after boot
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    now = time.time()
    return started if now - 600 < started <= now else now  # a clock that disagrees with /proc: trust now
