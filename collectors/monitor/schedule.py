"""When scheduled jobs fire: fixed intervals (``every: 30s``) or cron expressions (``*/5 * * * *``).

Times are wall-clock epoch seconds (``time.time()``), because cron fields name
wall-clock minutes. Cron fields are read in the host's local time zone, as the
system cron does. A schedule never replays fires it missed (a stalled machine,
a job that ran long): the next fire is always the first one after *now*.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Protocol

from croniter import croniter

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
DURATION_HINT = "Fix: use a duration like 500ms, 30s, 5m, 1h or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number of seconds or a string ``500ms``/``30s``/``5m``/``1h``/``1d``.

    Raises:
        ValueError: not a duration, or not a positive finite one (message ends with the fix).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration. {DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration. {DURATION_HINT}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration {value!r} must be greater than zero. {DURATION_HINT}")
    return seconds


def format_duration(seconds: float) -> str:
    """``1h``/``5m``/``30s`` when whole, ``250ms`` below a second, else seconds (``1.5s``)."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    millis = seconds * 1000
    return f"{int(millis)}ms" if seconds < 1 and millis == int(millis) else f"{seconds:g}s"


class Schedule(Protocol):
    """A rule for the fire times of a job."""

    #: Typical seconds between fires (stored as ``interval_s`` on the job's rows).
    interval_s: float

    def first(self, start: float) -> float:
        """The first fire time at or after ``start`` (the daemon's start)."""
        ...

    def next_after(self, now: float) -> float:
        """The first fire time strictly after ``now``."""
        ...

    def describe(self) -> str:
        """Short text for logs and the stored config (``every 30s``, ``cron */5 * * * *``)."""
        ...


class IntervalSchedule:
    """Fires at ``anchor``, ``anchor + every``, ``anchor + 2 * every``, ...

    The anchor is set by :meth:`first` (the daemon's start, so a fresh monitor
    probes at once); fires stay on that grid however long a job runs.
    """

    def __init__(self, every_s: float) -> None:
        if not (math.isfinite(every_s) and every_s > 0):
            raise ValueError(f"interval must be > 0 seconds, got {every_s}")
        self.interval_s = float(every_s)
        self._anchor: float | None = None

    def first(self, start: float) -> float:
        """``start`` itself; it anchors the grid."""
        self._anchor = start
        return start

    def next_after(self, now: float) -> float:
        """The next grid point after ``now`` (missed points are skipped, not replayed)."""
        anchor = now if self._anchor is None else self._anchor
        steps = math.floor((now - anchor) / self.interval_s) + 1
        fire = anchor + steps * self.interval_s
        # Floating point may land exactly on ``now``; the contract is strictly after.
        return fire if fire > now else fire + self.interval_s

    def describe(self) -> str:
        """``every 30s``."""
        return f"every {format_duration(self.interval_s)}"


class CronSchedule:
    """Fires at the times a five-field cron expression names (six fields: seconds last, as croniter reads them).

    Raises:
        ValueError: an invalid expression (message ends with the fix).
    """

    def __init__(self, expression: str) -> None:
        expression = " ".join(str(expression).split())
        if not croniter.is_valid(expression):
            raise ValueError(
                f"invalid cron expression {expression!r}. Fix: use five fields "
                "'minute hour day-of-month month day-of-week', e.g. '*/5 * * * *'"
            )
        self.expression = expression
        base = _local(0.0)
        it = croniter(expression, base)
        first, second = it.get_next(float), it.get_next(float)
        self.interval_s = float(second - first)

    def first(self, start: float) -> float:
        """The first matching time at or after ``start``."""
        return self.next_after(start - 1e-6)

    def next_after(self, now: float) -> float:
        """The first matching time strictly after ``now``."""
        return float(croniter(self.expression, _local(now)).get_next(float))

    def describe(self) -> str:
        """``cron */5 * * * *``."""
        return f"cron {self.expression}"


def _local(epoch: float) -> datetime:
    # An aware local datetime: croniter then matches fields in local time and handles DST itself.
    return datetime.fromtimestamp(epoch).astimezone()
