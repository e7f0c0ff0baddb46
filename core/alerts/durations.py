"""Durations in alert rules and the CLI: ``90s``, ``5m``, ``2h``, ``1d``, ``1h30m`` or a number of seconds."""

from __future__ import annotations

import math
import re

__all__ = ["DURATION_HINT", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\s*(?:\d+(?:\.\d+)?|\.\d+)\s*(?:ms|s|m|h|d)\s*)+$")
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*$")

DURATION_HINT = "use a duration like 30s, 5m, 2h, 1d, 1h30m or a number of seconds"


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Seconds in ``value``.

    Args:
        value: A number of seconds, or a string of one or more ``<number><unit>``
            parts with units ms, s, m, h, d (``"1h30m"``); a bare number string
            is seconds.
        allow_zero: Accept 0 (``for: 0s`` means "fire at once").

    Raises:
        ValueError: Not a duration, negative, or zero when zero is not allowed;
            the message ends with the fix.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (plain := _NUMBER.match(value)):
        seconds = float(plain.group(1))
    elif isinstance(value, str) and _WHOLE.match(value):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    else:
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        need = "zero or more" if allow_zero else "greater than zero"
        raise ValueError(f"duration {value!r} must be {need}; {DURATION_HINT}")
    return seconds


def format_duration(seconds: float) -> str:
    """Compact text for ``seconds``: ``0s``, ``90s``, ``5m``, ``1h30m``, ``2d``, ``250ms``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
