"""Telemetry retention and downsampling on SQLite and PostgreSQL: rollups, pruning, resolution-aware series."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cli_support import gw
from sqlalchemy import Engine, func, select

from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.models import TelemetryRollup, TelemetrySample
from gemmawatch.storage.queries import runs, telemetry
from gemmawatch.storage.queries.telemetry_buckets import floor_time, rollup_state

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MIN = timedelta(minutes=1)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def _reading(ts: datetime, value: float, *, metric: str = "gpu.util", host: str = "box", **extra: Any) -> dict:
    return {
        "run_id": None,
        "host": host,
        "source": "nvml",
        "metric": metric,
        "unit": "%",
        "value": value,
        "ts": ts,
        "interval_s": 10.0,
        "labels": {"gpu": "0"},
        **extra,
    }


def _add(engine: Engine, rows: Iterable[dict]) -> None:
    with session_scope(engine) as s:
        telemetry.add_telemetry(s, list(rows))


def _rollup(engine: Engine, now: datetime, **kwargs: Any) -> dict[str, int]:
    with session_scope(engine) as s:
        return telemetry.rollup_telemetry(s, now=now, **kwargs)


def _rollups(engine: Engine, resolution: str) -> list[dict[str, Any]]:
    r = TelemetryRollup.__table__
    with session_scope(engine) as s:
        rows = s.execute(select(r).where(r.c.resolution == resolution).order_by(r.c.bucket_start, r.c.id))
        return [dict(row) for row in rows.mappings()]


def _raw_count(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(TelemetrySample)).scalar_one())


def _series(engine: Engine, **kwargs: Any) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return telemetry.telemetry_series(s, metric=kwargs.pop("metric", "gpu.util"), **kwargs)


def _state(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as s:
        return rollup_state(s)


def test_rollup_aggregates_per_minute_hour_and_day_bucket(engine: Engine) -> None:
    # 12:00:00 -> 1, 12:00:30 -> 5, 12:01:10 -> 3; 13:00:05 -> 10 (next hour).
    _add(
        engine,
        [
            _reading(T0, 1.0),
            _reading(T0 + timedelta(seconds=30), 5.0),
            _reading(T0 + timedelta(seconds=70), 3.0),
            _reading(T0 + timedelta(hours=1, seconds=5), 10.0),
        ],
    )
    counts = _rollup(engine, T0 + DAY)
    assert counts == {
        "raw_rolled": 4, "minute_rows": 3, "hour_rows": 2, "day_rows": 1, "raw_deleted": 0, "minute_deleted": 0,
    }  # fmt: skip
    minutes = _rollups(engine, "1m")
    assert [(m["bucket_start"], m["min"], m["avg"], m["max"], m["count"], m["sum"]) for m in minutes] == [
        (T0, 1.0, 3.0, 5.0, 2, 6.0),
        (T0 + MIN, 3.0, 3.0, 3.0, 1, 3.0),
        (T0 + timedelta(hours=1), 10.0, 10.0, 10.0, 1, 10.0),
    ]
    hours = _rollups(engine, "1h")
    assert [(h["bucket_start"], h["min"], h["avg"], h["max"], h["count"]) for h in hours] == [
        (T0, 1.0, 3.0, 5.0, 3),
        (T0 + timedelta(hours=1), 10.0, 10.0, 10.0, 1),
    ]
    (day,) = _rollups(engine, "1d")
    midnight = T0.replace(hour=0)
    want = (midnight, 1.0, 4.75, 10.0, 4, 19.0)
    assert (day["bucket_start"], day["min"], day["avg"], day["max"], day["count"], day["sum"]) == want
    assert (day["labels"], day["run_id"], day["run_key"], day["unit"]) == ({"gpu": "0"}, None, 0, "%")
    first = hours[0]
    assert (first["host"], first["source"], first["metric"], first["unit"]) == ("box", "nvml", "gpu.util", "%")
    assert first["labels"] == {"gpu": "0"} and json.loads(first["labels_key"]) == {"gpu": "0"}
    assert first["run_id"] is None and first["run_key"] == 0
    assert first["bucket_start"].tzinfo is not None


def test_labels_and_runs_are_kept_apart(engine: Engine) -> None:
    with session_scope(engine) as s:
        run_a = runs.create_run(s, kind="eval", host="box", target_id=None, config={}, versions={})
        run_b = runs.create_run(s, kind="eval", host="box", target_id=None, config={}, versions={})
    _add(
        engine,
        [
            _reading(T0, 1.0, labels={"gpu": "0", "kind": "a"}),
            # The same labels in another key order are the same series.
            _reading(T0 + timedelta(seconds=1), 3.0, labels={"kind": "a", "gpu": "0"}),
            _reading(T0, 7.0, labels={"gpu": "1", "kind": "a"}),
            _reading(T0, 20.0, run_id=run_a),
            _reading(T0, 40.0, run_id=run_b),
            _reading(T0, 60.0),
        ],
    )
    _rollup(engine, T0 + DAY)
    hours = {(json.dumps(h["labels"], sort_keys=True), h["run_id"]): h for h in _rollups(engine, "1h")}
    assert {key: (h["count"], h["avg"]) for key, h in hours.items()} == {
        ('{"gpu": "0", "kind": "a"}', None): (2, 2.0),
        ('{"gpu": "1", "kind": "a"}', None): (1, 7.0),
        ('{"gpu": "0"}', run_a): (1, 20.0),
        ('{"gpu": "0"}', run_b): (1, 40.0),
        ('{"gpu": "0"}', None): (1, 60.0),
    }
    # Deleting a run deletes its rollups with it.
    with session_scope(engine) as s:
        runs.delete_run(s, run_a)
    assert len(_rollups(engine, "1h")) == 4


def test_rollup_is_idempotent(engine: Engine) -> None:
    _add(engine, [_reading(T0 + timedelta(seconds=10 * i), float(i)) for i in range(30)])
    now = T0 + timedelta(hours=2)
    first = _rollup(engine, now)
    assert first["raw_rolled"] == 30
    before = (_rollups(engine, "1m"), _rollups(engine, "1h"), _rollups(engine, "1d"))
    assert _rollup(engine, now) == dict.fromkeys(first, 0)
    assert (_rollups(engine, "1m"), _rollups(engine, "1h"), _rollups(engine, "1d")) == before
    # Later calls with nothing new to roll leave the 1-day rows alone as well.
    assert _rollup(engine, now + MIN)["day_rows"] == 0
    assert _rollups(engine, "1d") == before[2]


def test_later_readings_merge_into_an_existing_bucket(engine: Engine) -> None:
    _add(engine, [_reading(T0 + timedelta(minutes=m), float(m)) for m in range(10)])  # 0..9
    _rollup(engine, T0 + timedelta(minutes=20))
    assert _state(engine)["rolled_until"] == T0 + timedelta(minutes=19)
    (hour,) = _rollups(engine, "1h")
    assert (hour["count"], hour["min"], hour["max"]) == (10, 0.0, 9.0)
    # More readings in the same hour, one lower and one higher than all before.
    _add(engine, [_reading(T0 + timedelta(minutes=30), -5.0), _reading(T0 + timedelta(minutes=40), 50.0)])
    counts = _rollup(engine, T0 + timedelta(minutes=50))
    assert (counts["raw_rolled"], counts["hour_rows"]) == (2, 1)
    (hour,) = _rollups(engine, "1h")
    values = [*range(10), -5, 50]
    assert (hour["count"], hour["min"], hour["max"], hour["sum"]) == (12, -5.0, 50.0, float(sum(values)))
    assert hour["avg"] == pytest.approx(sum(values) / 12)
    assert len(_rollups(engine, "1m")) == 12


def test_raw_readings_are_deleted_only_past_retention(engine: Engine) -> None:
    now = T0 + timedelta(days=10)
    old = [_reading(T0 + timedelta(hours=h), float(h)) for h in range(3)]  # 10 days old
    recent = [_reading(now - timedelta(days=2), 100.0), _reading(now - timedelta(minutes=30), 200.0)]
    _add(engine, [*old, *recent])
    counts = _rollup(engine, now, raw_retention=timedelta(days=7))
    assert (counts["raw_rolled"], counts["raw_deleted"]) == (5, 3)
    with session_scope(engine) as s:
        left = s.execute(select(TelemetrySample.value).order_by(TelemetrySample.value)).scalars().all()
    assert left == [100.0, 200.0]
    assert sum(h["count"] for h in _rollups(engine, "1h")) == 5
    state = _state(engine)
    assert state["raw_pruned_until"] == now - timedelta(days=7)  # now is on a whole hour
    # Readings younger than the settle time are not rolled yet.
    _add(engine, [_reading(now - timedelta(seconds=20), 300.0)])
    assert _rollup(engine, now)["raw_rolled"] == 0


def test_a_late_reading_is_counted_when_its_hour_is_pruned(engine: Engine) -> None:
    _add(engine, [_reading(T0 + timedelta(minutes=5), 1.0)])
    _rollup(engine, T0 + timedelta(hours=2))
    # Arrives after its minute was rolled: not in the rollups yet, but kept raw.
    _add(engine, [_reading(T0 + timedelta(minutes=6), 3.0)])
    assert _rollup(engine, T0 + timedelta(hours=3))["raw_rolled"] == 0
    (hour,) = _rollups(engine, "1h")
    assert hour["count"] == 1
    # Pruning that hour recomputes it from every raw reading in it, the late one included.
    counts = _rollup(engine, T0 + timedelta(days=8), raw_retention=timedelta(days=7))
    assert counts["raw_deleted"] == 2
    (hour,) = _rollups(engine, "1h")
    assert (hour["count"], hour["min"], hour["max"], hour["avg"]) == (2, 1.0, 3.0, 2.0)
    # Even later: a reading for an hour whose raw data is gone is merged in, then deleted.
    _add(engine, [_reading(T0 + timedelta(minutes=7), 5.0)])
    counts = _rollup(engine, T0 + timedelta(days=8, hours=1), raw_retention=timedelta(days=7))
    assert (counts["raw_rolled"], counts["raw_deleted"]) == (1, 1)
    (hour,) = _rollups(engine, "1h")
    assert (hour["count"], hour["max"], hour["avg"]) == (3, 5.0, 3.0)


def test_minute_rollups_expire_hour_rollups_stay(engine: Engine) -> None:
    _add(engine, [_reading(T0, 1.0), _reading(T0 + timedelta(days=20), 2.0)])
    counts = _rollup(
        engine, T0 + timedelta(days=31), raw_retention=timedelta(days=7), minute_retention=timedelta(days=30)
    )
    assert counts["raw_deleted"] == 2
    assert [m["bucket_start"] for m in _rollups(engine, "1m")] == [T0 + timedelta(days=20)]
    assert [h["bucket_start"] for h in _rollups(engine, "1h")] == [T0, T0 + timedelta(days=20)]
    midnight = T0.replace(hour=0)
    assert [d["bucket_start"] for d in _rollups(engine, "1d")] == [midnight, midnight + timedelta(days=20)]


def test_bad_retention_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="minute_retention"):
        _rollup(engine, T0, raw_retention=timedelta(days=7), minute_retention=timedelta(days=1))


def test_concurrent_rollups_count_each_reading_once(engine: Engine) -> None:
    _add(engine, [_reading(T0 + timedelta(seconds=5 * i), 1.0, host=f"h{i % 3}") for i in range(2000)])
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def roll() -> None:
        try:
            barrier.wait()
            _rollup(engine, T0 + DAY)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(h["count"] for h in _rollups(engine, "1h")) == 2000
    assert sum(m["count"] for m in _rollups(engine, "1m")) == 2000
    assert sum(d["count"] for d in _rollups(engine, "1d")) == 2000


# --- telemetry_series ----------------------------------------------------------------------------


def _fill(engine: Engine, *, hours: int, every_s: int = 10) -> list[dict]:
    rows = []
    for i in range(hours * 3600 // every_s):
        ts = T0 + timedelta(seconds=every_s * i)
        rows.append(_reading(ts, float(i % 60), labels={"gpu": "0"}))
        rows.append(_reading(ts, 100.0, labels={"gpu": "1"}))
        rows.append(_reading(ts, 1.0, metric="cpu.util"))
    _add(engine, rows)
    return rows


def test_series_reads_raw_when_the_range_is_small(engine: Engine) -> None:
    _fill(engine, hours=1)
    points = _series(engine, start=T0, end=T0 + timedelta(minutes=5), labels={"gpu": "0"}, max_points=100)
    assert {p["resolution"] for p in points} == {"raw"}
    assert len(points) == 31  # 0..300 s every 10 s, end inclusive
    assert [p["avg"] for p in points[:3]] == [0.0, 1.0, 2.0] and points[0]["ts"] == T0
    # Two series at one timestamp become one point (min/avg/max over them).
    both = _series(engine, start=T0, end=T0 + timedelta(seconds=10), max_points=100)
    assert [(p["min"], p["avg"], p["max"], p["count"]) for p in both] == [(0.0, 50.0, 100.0, 2), (1.0, 50.5, 100.0, 2)]


@pytest.mark.parametrize("rolled", [False, True])
def test_series_uses_minute_buckets_for_hours(engine: Engine, rolled: bool) -> None:
    _fill(engine, hours=2)
    if rolled:  # part rolled up, the last half hour still raw: both are merged
        _rollup(engine, T0 + timedelta(hours=1, minutes=31))
    points = _series(engine, start=T0, end=T0 + timedelta(hours=2), labels={"gpu": "0"}, max_points=500)
    assert len(points) == 120 and {p["resolution"] for p in points} == {"1m"}
    assert all(p["count"] == 6 for p in points)
    first = points[0]
    assert (first["ts"], first["min"], first["avg"], first["max"]) == (T0, 0.0, 2.5, 5.0)
    assert points[-1]["ts"] == T0 + timedelta(minutes=119)
    assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)


@pytest.mark.parametrize("rolled", [False, True])
def test_series_uses_hour_buckets_for_long_ranges(engine: Engine, rolled: bool) -> None:
    _fill(engine, hours=6, every_s=60)
    if rolled:
        _rollup(engine, T0 + timedelta(hours=4, minutes=10))
    points = _series(engine, start=T0, end=T0 + timedelta(hours=6), host="box", max_points=6)
    # 6 hours (360 minutes) in at most ~6 points: 1-hour buckets (60 readings per series, 2 series).
    assert [p["ts"] for p in points] == [T0 + timedelta(hours=h) for h in range(6)]
    assert {p["resolution"] for p in points} == {"1h"}
    assert [(p["count"], p["min"], p["max"]) for p in points] == [(120, 0.0, 100.0)] * 6
    assert points[0]["avg"] == pytest.approx((29.5 + 100.0) / 2)
    assert _series(engine, start=T0, end=T0 + timedelta(hours=6), host="other", max_points=6) == []
    # More hours than max_points: the day's bucket (the range lies within one UTC day).
    (day,) = _series(engine, start=T0, end=T0 + timedelta(hours=6), host="box", max_points=5)
    assert (day["ts"], day["resolution"], day["count"], day["min"], day["max"]) == (
        T0.replace(hour=0),
        "1d",
        720,
        0.0,
        100.0,
    )
    assert day["avg"] == pytest.approx((29.5 + 100.0) / 2)


# --- 1-day rollups ----------------------------------------------------------------------------------


def _day_readings(hours: int, every_s: int = 600) -> list[dict]:
    """``hours`` of readings from T0 (12:00) every ``every_s`` s: GPUs 0 and 1, and GPU 2 within a run."""
    rows = []
    for i in range(hours * 3600 // every_s):
        ts = T0 + timedelta(seconds=every_s * i)
        rows.append(_reading(ts, float((i * 7) % 100), labels={"gpu": "0"}))
        rows.append(_reading(ts, float(i % 13) - 5.0, labels={"gpu": "1"}))
        rows.append(_reading(ts, float(i % 5), labels={"gpu": "2"}, run_id=1))
    return rows


def _aggregates(rows: Iterable[dict], width: timedelta = DAY) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """Per (bucket start, gpu label, run): (min, avg, max, count, sum) of ``rows``' values, computed here."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        key = (floor_time(row["ts"], width), row["labels"]["gpu"], row["run_id"])
        groups.setdefault(key, []).append(row["value"])
    return {
        key: (min(values), sum(values) / len(values), max(values), len(values), sum(values))
        for key, values in groups.items()
    }


def _stored_days(engine: Engine) -> dict[tuple[Any, ...], tuple[float, ...]]:
    return {
        (d["bucket_start"], d["labels"]["gpu"], d["run_id"]): (d["min"], d["avg"], d["max"], d["count"], d["sum"])
        for d in _rollups(engine, "1d")
    }


def _assert_days_equal(engine: Engine, rows: list[dict]) -> None:
    got, want = _stored_days(engine), _aggregates(rows)
    assert sorted(got) == sorted(want)
    for key, (lo, avg, hi, n, total) in want.items():
        assert got[key] == (lo, pytest.approx(avg), hi, n, total), key
    # Each 1-day row is the sum of its day's 1-hour rows.
    by_day: dict[tuple[Any, ...], list[dict]] = {}
    for h in _rollups(engine, "1h"):
        by_day.setdefault((h["bucket_start"].replace(hour=0), h["labels"]["gpu"], h["run_id"]), []).append(h)
    for key, hours in by_day.items():
        assert got[key][3] == sum(h["count"] for h in hours), key


def _with_run(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert runs.create_run(s, kind="monitor", host="box", target_id=None, config={}, versions={}) == 1


def test_day_rollups_match_the_readings_of_each_day(engine: Engine) -> None:
    _with_run(engine)
    rows = _day_readings(hours=84)  # 12:00 on day 1 to 00:00 on day 5: 4 UTC days (12 h, 24 h, 24 h, 24 h)
    _add(engine, rows)
    retention = {"raw_retention": DAY, "minute_retention": 2 * DAY}
    # Rolled in steps that end mid-hour, mid-day and past midnight, pruning the oldest hours as they go.
    for now in (T0 + timedelta(hours=5, minutes=31), T0 + timedelta(hours=13), T0 + timedelta(days=2, hours=1)):
        counts = _rollup(engine, now, **retention)
        assert counts["day_rows"] > 0
        rolled_until = _state(engine)["rolled_until"]
        _assert_days_equal(engine, [r for r in rows if r["ts"] < rolled_until])
    assert _state(engine)["raw_pruned_until"] == T0 + timedelta(days=1, hours=1)
    # Late readings: one for an hour already pruned (merged in), one for an hour rolled but still raw
    # (counted when that hour is pruned); both below and above every other value of their day.
    late = [
        _reading(T0 + timedelta(minutes=3), 1000.0, labels={"gpu": "0"}),
        _reading(T0 + timedelta(days=1, hours=3, minutes=1), -1000.0, labels={"gpu": "1"}),
    ]
    _add(engine, late)
    everything = [*rows, *late]
    counts = _rollup(engine, T0 + timedelta(days=10), **retention)  # rolls the rest, prunes every reading
    assert counts["raw_deleted"] > 0 and _raw_count(engine) == 0
    _assert_days_equal(engine, everything)
    midnight = T0.replace(hour=0)
    assert sorted({d["bucket_start"] for d in _rollups(engine, "1d")}) == [midnight + k * DAY for k in range(4)]
    # Known figures: GPU 1 on the second day holds 144 readings of -5..7 and the late -1000.
    lo, avg, hi, n, total = _stored_days(engine)[(midnight + DAY, "1", None)]
    assert (lo, hi, n) == (-1000.0, 7.0, 145)
    assert avg == pytest.approx(total / 145)
    before = _rollups(engine, "1d")
    assert _rollup(engine, T0 + timedelta(days=10), **retention)["day_rows"] == 0
    assert _rollups(engine, "1d") == before


def test_a_day_rollup_takes_every_key_order_of_the_same_labels(engine: Engine) -> None:
    _add(
        engine,
        [
            _reading(T0, 1.0, labels={"gpu": "0", "kind": "a"}),
            _reading(T0 + timedelta(hours=1), 3.0, labels={"kind": "a", "gpu": "0"}),
        ],
    )
    _rollup(engine, T0 + DAY)
    (day,) = _rollups(engine, "1d")
    assert (day["count"], day["min"], day["avg"], day["max"]) == (2, 1.0, 2.0, 3.0)
    assert json.loads(day["labels_key"]) == {"gpu": "0", "kind": "a"}


@pytest.mark.parametrize("rolled", [False, True])
def test_series_uses_day_buckets_past_max_points_hours(engine: Engine, rolled: bool) -> None:
    _with_run(engine)
    rows = _day_readings(hours=84)
    _add(engine, rows)
    if rolled:  # rolled into 1-day rows up to 06:00 on the third day, the rest still raw: both are merged
        _rollup(engine, T0 + timedelta(days=1, hours=18, minutes=1))
    end = T0 + timedelta(hours=84)
    # 84 hours > 50 points: one point per UTC day.
    points = _series(engine, start=T0, end=end, labels={"gpu": "0"}, max_points=50)
    want = _aggregates(r for r in rows if r["labels"]["gpu"] == "0")
    assert {p["resolution"] for p in points} == {"1d"}
    assert [p["ts"] for p in points] == [key[0] for key in sorted(want)]
    for point, key in zip(points, sorted(want), strict=True):
        lo, avg, hi, n, _ = want[key]
        assert (point["min"], point["max"], point["count"]) == (lo, hi, n)
        assert point["avg"] == pytest.approx(avg)
    # More days than max_points: buckets of a whole number of days (here 2, aligned to the Unix epoch).
    points = _series(engine, start=T0, end=end, max_points=2)
    merged: dict[datetime, list[float]] = {}
    for row in rows:
        merged.setdefault(floor_time(row["ts"], 2 * DAY), []).append(row["value"])
    assert [(p["ts"], p["resolution"], p["count"], p["min"], p["max"]) for p in points] == [
        (ts, "1d", len(values), min(values), max(values)) for ts, values in sorted(merged.items())
    ]
    assert [p["avg"] for p in points] == [pytest.approx(sum(v) / len(v)) for _, v in sorted(merged.items())]
    # One run's series alone.
    (first, *_rest) = _series(engine, start=T0, end=end, run_id=1, max_points=50)
    assert (first["ts"], first["count"], first["resolution"]) == (T0.replace(hour=0), 72, "1d")


@pytest.mark.parametrize(
    ("span", "max_points", "level", "width_s"),
    [
        (timedelta(minutes=1000), 1000, "1m", 60),
        (timedelta(minutes=1000, seconds=1), 1000, "1h", 3600),
        (timedelta(hours=1000), 1000, "1h", 3600),
        (timedelta(hours=1000, seconds=1), 1000, "1d", 86400),
        (timedelta(days=77), 1000, "1d", 86400),  # 1,848 hourly rows would exceed 1000: 77 daily ones
        (timedelta(days=1000), 1000, "1d", 86400),
        (timedelta(days=1001), 1000, "1d", 2 * 86400),
        (timedelta(days=365), 100, "1d", 4 * 86400),
        (timedelta(hours=6), 3, "1d", 86400),
    ],
)
def test_series_resolution_is_the_finest_level_within_max_points(
    span: timedelta, max_points: int, level: str, width_s: int
) -> None:
    from gemmawatch.storage.queries.telemetry_series import _level

    assert _level(span, max_points) == (level, width_s)


def test_series_over_pruned_time_reads_rollups(engine: Engine) -> None:
    _fill(engine, hours=1)
    retention = {"raw_retention": timedelta(days=7), "minute_retention": timedelta(days=30)}
    _rollup(engine, T0 + timedelta(days=10), **retention)
    assert _raw_count(engine) == 0
    # Few points would fit, but the raw readings are gone: 1-minute rollups answer.
    minutes = _series(engine, start=T0, end=T0 + timedelta(minutes=10), labels={"gpu": "1"}, max_points=1000)
    assert [(p["resolution"], p["count"], p["avg"]) for p in minutes] == [("1m", 6, 100.0)] * 11
    # Once 1-minute rollups expire, 1-hour rollups stand in.
    _rollup(engine, T0 + timedelta(days=40), **retention)
    hours = _series(engine, start=T0, end=T0 + timedelta(minutes=10), labels={"gpu": "1"}, max_points=1000)
    assert [(p["ts"], p["resolution"], p["count"], p["avg"]) for p in hours] == [(T0, "1h", 360, 100.0)]


def test_series_filters_by_run(engine: Engine) -> None:
    with session_scope(engine) as s:
        run_id = runs.create_run(s, kind="eval", host="box", target_id=None, config={}, versions={})
    _add(engine, [_reading(T0, 1.0, run_id=run_id), _reading(T0, 9.0)])
    (point,) = _series(engine, start=T0, end=T0 + MIN, run_id=run_id)
    assert (point["avg"], point["count"]) == (1.0, 1)
    assert _series(engine, start=T0 + MIN, end=T0) == []
    with pytest.raises(ValueError):
        _series(engine, start=T0, end=T0 + MIN, max_points=0)


def test_cli_db_rollup(db_url: str) -> None:
    engine = get_engine(db_url)
    now = datetime.now(UTC)
    _add(engine, [_reading(now - timedelta(days=10), 1.0), _reading(now - timedelta(hours=1), 2.0)])
    proc = gw("db", "rollup", "--db", db_url, "--raw-retention", "7d", "--minute-retention", "30d", "--json")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)
    assert (counts["raw_rolled"], counts["raw_deleted"], counts["day_rows"]) == (2, 1, 2)
    proc = gw("db", "rollup", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert "Rolled up 0 raw readings (0 1-minute, 0 1-hour and 0 1-day rows written)" in proc.stdout


@pytest.mark.parametrize("rolled", [False, True])
def test_series_gives_one_series_its_raw_readings_when_they_are_few(engine: Engine, rolled: bool) -> None:
    _fill(engine, hours=1)  # 360 readings per GPU: 720 of the metric
    if rolled:  # counted from the rollups then, not by fetching every reading
        _rollup(engine, T0 + timedelta(minutes=40))
    window = {"start": T0, "end": T0 + timedelta(minutes=59, seconds=50), "max_points": 400}
    assert {p["resolution"] for p in _series(engine, **window)} == {"1m"}  # 720 > 400
    points = _series(engine, labels={"gpu": "1"}, **window)
    assert len(points) == 360 and {(p["resolution"], p["avg"]) for p in points} == {("raw", 100.0)}
    assert {p["resolution"] for p in _series(engine, labels={"gpu": "1"}, **{**window, "max_points": 300})} == {"1m"}


@pytest.mark.parametrize("width", [60, 120, 300, 900, 3600, 7200, 10800, 21600, 86400, 172800, 45])
def test_bucket_start_matches_epoch_floor_on_the_database(engine: Engine, width: int) -> None:
    from sqlalchemy import literal

    from gemmawatch.storage.models import UTCDateTime
    from gemmawatch.storage.queries.telemetry_buckets import bucket_start, floor_time

    stamps = [T0 + timedelta(seconds=k * 7919.123457) for k in range(40)]
    with session_scope(engine) as s:
        dialect = s.get_bind().dialect.name
        for ts in stamps:
            got = s.execute(select(bucket_start(dialect, literal(ts, UTCDateTime()), width))).scalar_one()
            assert got == floor_time(ts, timedelta(seconds=width)), (width, ts)


def test_a_run_keeps_its_telemetry_after_raw_retention(engine: Engine) -> None:
    with session_scope(engine) as s:
        run_id = runs.create_run(s, kind="eval", host="box", target_id=None, config={}, versions={})
    # 10:00-12:00 on one day, every 30 s: the first hour will be pruned, the second kept raw.
    start = T0 - timedelta(hours=2)
    values = [float(i % 10) for i in range(240)]
    _add(engine, [_reading(start + timedelta(seconds=30 * i), v, run_id=run_id) for i, v in enumerate(values)])
    with session_scope(engine) as s:
        before_rows = telemetry.telemetry_for_run(s, run_id)
        (before,) = telemetry.telemetry_summary(s, run_id)
    now = T0 - timedelta(hours=1) + timedelta(days=7)  # raw cutoff: 11:00 on the first day
    assert _rollup(engine, now, raw_retention=timedelta(days=7))["raw_deleted"] == 120
    with session_scope(engine) as s:
        rows = telemetry.telemetry_for_run(s, run_id)
        (after,) = telemetry.telemetry_summary(s, run_id)
    assert len(before_rows) == 240
    old, recent = rows[:60], rows[60:]  # 60 one-minute rollups, then the 120 readings still raw
    assert len(recent) == 120 and all(r["id"] is not None for r in recent)
    assert {(r["id"], r["interval_s"], r["value"]) for r in old} == {(None, 60.0, 0.5), (None, 60.0, 2.5),
                                                                      (None, 60.0, 4.5), (None, 60.0, 6.5),
                                                                      (None, 60.0, 8.5)}  # fmt: skip
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    for key in ("n", "min", "max", "first_ts", "last_ts"):
        assert after[key] == before[key], key
    assert after["avg"] == pytest.approx(before["avg"])
