"""Monitor schedules: durations, fixed intervals, cron next-fire times."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from gemmawatch.collectors.monitor.schedule import CronSchedule, IntervalSchedule, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0), ("500ms", 0.5), (" 2.5s ", 2.5), (10, 10.0),
     ("7", 7.0), (0.25, 0.25)],
)  # fmt: skip
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 minutes", "-3s", "0s", 0, -1, True, None, "1e3s", float("inf")])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (30, 300, 3600, 0.5, 90, 1.5)] == ["30s", "5m", "1h", "500ms", "90s", "1.5s"]


def test_interval_fires_on_a_grid_from_the_start() -> None:
    s = IntervalSchedule(30)
    assert s.first(1000.0) == 1000.0
    assert s.next_after(1000.0) == 1030.0
    assert s.next_after(1029.9) == 1030.0
    assert s.next_after(1030.0) == 1060.0  # strictly after
    assert s.interval_s == 30.0 and s.describe() == "every 30s"


def test_interval_skips_missed_fires_instead_of_bursting() -> None:
    s = IntervalSchedule(10)
    s.first(0.0)
    # A job that ran 35 s (or a stalled machine) does not get three catch-up fires.
    assert s.next_after(35.0) == 40.0


def test_interval_rejects_zero() -> None:
    with pytest.raises(ValueError):
        IntervalSchedule(0)


def _epoch(text: str) -> float:
    # Local wall-clock time, as cron reads its fields.
    return time.mktime(datetime.fromisoformat(text).timetuple())


def test_cron_next_fire() -> None:
    s = CronSchedule("*/5 * * * *")
    assert s.interval_s == 300.0 and s.describe() == "cron */5 * * * *"
    assert s.next_after(_epoch("2024-03-01T12:03:10")) == _epoch("2024-03-01T12:05:00")
    assert s.next_after(_epoch("2024-03-01T12:05:00")) == _epoch("2024-03-01T12:10:00")  # strictly after
    assert s.first(_epoch("2024-03-01T12:05:00")) == _epoch("2024-03-01T12:05:00")  # at or after


def test_cron_daily_and_weekday() -> None:
    daily = CronSchedule("30 2 * * *")
    assert daily.next_after(_epoch("2024-03-01T12:00:00")) == _epoch("2024-03-02T02:30:00")
    monday = CronSchedule("0 9 * * 1")  # 2024-03-04 is a Monday
    assert monday.next_after(_epoch("2024-03-01T12:00:00")) == _epoch("2024-03-04T09:00:00")


def test_cron_seconds_field_comes_last() -> None:
    s = CronSchedule("* * * * * */10")
    assert s.interval_s == 10.0
    assert s.next_after(_epoch("2024-03-01T12:00:01")) == _epoch("2024-03-01T12:00:10")


@pytest.mark.parametrize("bad", ["*/5 * * *", "every 5 minutes", "61 * * * *"])
def test_cron_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError, match="cron expression"):
        CronSchedule(bad)
