"""Wall-clock durations as people write them: 90s, 15m, 1h, 1h30m, 8h (or plain seconds)."""

from __future__ import annotations

import math
import re

from tuner.core.errors import TunerError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """Seconds in `text` ("90", "90s", "15m", "1h30m"); TunerError with an example when it is not a duration."""
    cleaned = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _PART.findall(cleaned)
        if not parts or "".join(number + unit for number, unit in parts) != cleaned:
            raise TunerError(f"{text!r} is not a duration; write it as 90s, 15m, 1h or 1h30m") from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise TunerError(f"{text!r} is not a positive duration; write it as 90s, 15m, 1h or 1h30m")
    return seconds


def format_duration(seconds: float) -> str:
    """`seconds` as short text that `parse_duration` reads back: 90s, 15m, 1h30m, 1h0m5s."""
    whole = round(seconds)
    if abs(seconds - whole) > 1e-9 or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (
        (f"{hours}h" if hours else "")
        + (f"{minutes}m" if minutes or (hours and secs) else "")
        + (f"{secs}s" if secs else "")
    )
    return text
