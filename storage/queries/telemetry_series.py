"""Resolution-aware telemetry series: raw readings, 1-minute, 1-hour or 1-day buckets, whichever a range needs.

:func:`telemetry_series` reads the rollups written by
:func:`~gemmawatch.storage.queries.telemetry_rollups.rollup_telemetry` plus
the readings not rolled yet, so a chart's cost follows its time span and
``max_points``, not the number of readings stored. Import it through
``gemmawatch.storage.queries.telemetry``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, literal_column, select, type_coerce, union_all
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from gemmawatch.storage.models import ROLLUP_RESOLUTIONS, TelemetryRollup, TelemetrySample, as_utc
from gemmawatch.storage.queries._rows import table_of
from gemmawatch.storage.queries.telemetry_buckets import (
    DAY,
    HOUR,
    MINUTE,
    bucket_start,
    floor_time,
    label_filters,
    rollup_state,
    sql_dialect,
)

__all__ = ["telemetry_series"]

#: Rank of each source in a series bucket; the highest present names the bucket's resolution.
_RANKS = {"raw": 0, "1m": 1, "1h": 2, "1d": 3}
_BY_RANK = {rank: name for name, rank in _RANKS.items()}


def telemetry_series(
    s: Session,
    *,
    metric: str,
    start: datetime,
    end: datetime,
    host: str | None = None,
    source: str | None = None,
    run_id: int | None = None,
    labels: Mapping[str, str] | None = None,
    max_points: int = 1000,
) -> list[dict[str, Any]]:
    """One metric over ``[start, end]`` as at most about ``max_points`` time-ordered points.

    Every reading matching the filters (``labels``: each given key must have
    that value) falls into one series; each point has ``ts`` (bucket start,
    aware UTC), ``min``, ``avg``, ``max``, ``count`` (readings behind it) and
    ``resolution``, the width of the point's bucket:

    * ``"raw"``: the readings themselves (one point per timestamp), when the
      range holds at most ``max_points`` of them and none was pruned;
    * ``"1m"``: 1-minute buckets, when the range spans at most ``max_points``
      minutes: stored 1-minute rollups plus readings not rolled yet, aggregated
      on the fly (1-hour rollups stand in where 1-minute ones were pruned);
    * ``"1h"``: 1-hour buckets, when the range spans more than ``max_points``
      minutes but at most ``max_points`` hours, from 1-hour rollups plus
      unrolled readings;
    * ``"1d"``: buckets of one day (from 00:00 UTC), when the range spans more
      than ``max_points`` hours, or of a whole number of days so that at most
      ``max_points`` come back, from 1-day rollups plus unrolled readings.

    Each level is used while its own buckets over the range number at most
    ``max_points``; past that the next coarser stored level answers, so a
    series costs at most about ``max_points`` stored rows, and a range just
    past a level's limit gets fewer points than ``max_points``: 77 days at
    ``max_points=1000`` come back as 77 or 78 daily points (1,848 hourly rows
    would exceed it). Aggregation happens in SQL; the cost depends on
    ``max_points``, not on how much telemetry is stored.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    start, end = as_utc(start), as_utc(end)
    if end < start:
        return []
    dialect = sql_dialect(s)
    t, r = table_of(TelemetrySample), table_of(TelemetryRollup)
    state = rollup_state(s)

    def matching(table: Table) -> list[ColumnElement[bool]]:
        where = [table.c.metric == metric]
        if host is not None:
            where.append(table.c.host == host)
        if source is not None:
            where.append(table.c.source == source)
        if run_id is not None:
            where.append(table.c.run_id == run_id)
        # Last: SQLite tests conditions in order, and JSON is the dearest one.
        if table is r:  # on labels_key, which the chart index covers
            return [*where, *label_filters(dialect, r.c.labels_key, labels, as_text=True)]
        return [*where, *label_filters(dialect, table.c.labels, labels)]

    def at_most(limit: int, *where: ColumnElement[bool]) -> bool:
        capped = select(literal_column("1")).where(*where).limit(limit + 1).subquery()
        return int(s.execute(select(func.count()).select_from(capped)).scalar_one()) <= limit

    span = end - start
    raw_where = [*matching(t), t.c.ts >= start, t.c.ts <= end]
    rolled_until = state["rolled_until"]
    pruned = state["raw_pruned_until"]
    if pruned is None or start >= pruned:  # every reading of the range is still there
        filtered = any(x is not None for x in (host, source, run_id)) or bool(labels)
        # Index-only: the metric's readings of all series; few of them means few of ours.
        fits = at_most(max_points, t.c.metric == metric, t.c.ts >= start, t.c.ts <= end)
        if not fits and filtered:
            if rolled_until is None or rolled_until <= start:
                fits = at_most(max_points, *raw_where)
            else:
                # Count ours from the rollups (the chart index covers the filters) plus the
                # readings not rolled yet, instead of fetching every reading's row to filter it.
                resolution = _level(span, max_points)[0]
                count = select(func.coalesce(func.sum(r.c["count"]), 0)).where(
                    *matching(r),
                    r.c.resolution == resolution,
                    r.c.bucket_start >= floor_time(start, timedelta(seconds=ROLLUP_RESOLUTIONS[resolution])),
                    r.c.bucket_start <= end,
                    r.c.bucket_start < rolled_until,
                )
                rolled = int(s.execute(count).scalar_one())
                fits = rolled <= max_points and at_most(max_points - rolled, *raw_where, t.c.ts >= rolled_until)
        if fits:
            return _raw_points(s, raw_where)

    level, width = _level(span, max_points)
    base = ROLLUP_RESOLUTIONS[level]
    # Readings not rolled yet; one lower bound, so the index range starts there.
    unrolled_from = start if rolled_until is None else max(start, rolled_until)
    unrolled = [*matching(t), t.c.ts >= unrolled_from, t.c.ts <= end]
    # Each source is first aggregated per bucket of its own resolution (stored rows stream in
    # index order, no sort), then the few rows that leaves are combined into buckets of ``width``.
    raw_bucket = bucket_start(dialect, t.c.ts, base)
    parts: list[Select[Any] | Any] = [
        select(
            raw_bucket.label("b"),
            func.min(t.c.value).label("lo"),
            func.max(t.c.value).label("hi"),
            func.sum(t.c.value).label("total"),
            func.count().label("n"),
            # Readings aggregated on the fly make buckets of the chosen level.
            literal_column(str(_RANKS[level])).label("rank"),
        )
        .where(*unrolled)
        .group_by(raw_bucket)
    ]

    def stored(resolution: str, *where: ColumnElement[bool]) -> Select[Any]:
        return (
            select(
                r.c.bucket_start.label("b"),
                func.min(r.c.min).label("lo"),
                func.max(r.c.max).label("hi"),
                func.sum(r.c.sum).label("total"),
                func.sum(r.c["count"]).label("n"),
                literal_column(str(_RANKS[resolution])).label("rank"),
            )
            .where(*matching(r), r.c.resolution == resolution, r.c.bucket_start <= end, *where)
            .group_by(r.c.bucket_start)
        )

    if level == "1m":
        minute_pruned = state["minute_pruned_until"]
        parts.append(stored("1m", r.c.bucket_start >= floor_time(start, MINUTE)))
        if minute_pruned is not None and start < minute_pruned:
            parts.append(stored("1h", r.c.bucket_start >= floor_time(start, HOUR), r.c.bucket_start < minute_pruned))
    else:
        parts.append(stored(level, r.c.bucket_start >= floor_time(start, timedelta(seconds=base))))
    sources = union_all(*parts).subquery()
    # Stored buckets start on a multiple of ``base``, and ``base`` divides ``width``.
    bucket = sources.c.b if width == base else bucket_start(dialect, sources.c.b, width)
    query = (
        select(
            # Read as it comes (SQLite: text) and converted below: faster than the column type's processing.
            type_coerce(bucket, _PLAIN),
            func.min(sources.c.lo),
            func.max(sources.c.hi),
            func.sum(sources.c.total),
            func.sum(sources.c.n),
            func.max(sources.c.rank),
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    return [
        {"ts": _utc(ts), "min": float(lo), "avg": float(total) / int(n), "max": float(hi), "count": int(n),
         "resolution": _BY_RANK[rank]}
        for ts, lo, hi, total, n, rank in s.execute(query)
    ]  # fmt: skip


#: A type that leaves result values alone.
_PLAIN = NullType()


def _utc(value: datetime | str) -> datetime:
    """A bucket start as read from the database (SQLite: text) as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return as_utc(value)


def _level(span: timedelta, max_points: int) -> tuple[str, int]:
    """The stored level a range of length ``span`` is read from, and the width of its points in seconds.

    The finest level with at most ``max_points`` buckets over the range; past
    ``max_points`` days, points of a whole number of days.
    """
    if span <= max_points * MINUTE:
        return "1m", 60
    if span <= max_points * HOUR:
        return "1h", 3600
    return "1d", 86400 * max(1, math.ceil(span / (max_points * DAY)))


def _raw_points(s: Session, where: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    t = table_of(TelemetrySample)
    query = (
        select(type_coerce(t.c.ts, _PLAIN), func.min(t.c.value), func.avg(t.c.value), func.max(t.c.value), func.count())
        .where(*where)
        .group_by(t.c.ts)
        .order_by(t.c.ts)
    )
    return [
        {"ts": _utc(ts), "min": float(lo), "avg": float(avg), "max": float(hi), "count": int(n), "resolution": "raw"}
        for ts, lo, avg, hi, n in s.execute(query)
    ]  # fmt: skip
