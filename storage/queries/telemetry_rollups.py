"""Telemetry retention and downsampling: raw readings rolled into 1-minute/1-hour/1-day rollups, then pruned.

Import :func:`rollup_telemetry` through ``gemmawatch.storage.queries.telemetry``;
``telemetry_series`` (telemetry_series.py) reads what it writes.

How the rollup works (:func:`rollup_telemetry`), in one transaction:

1. **Claim** the single ``telemetry_rollup_state`` row with a write as the
   first statement. That write serialises concurrent rollups (a row lock on
   PostgreSQL, the database write lock on SQLite), so two monitors can run it
   at once without counting a reading twice; the second one then sees what
   the first committed.
2. **Prune raw**: readings older than ``raw_retention`` (cut at a whole hour)
   are deleted. Just before, the rollups of the hours being pruned are
   *recomputed* from those readings (delete, then insert), so a reading that
   arrived after its minute had already been rolled still counts; readings
   older than an earlier prune (very late ones) are *merged* into their buckets.
3. **Roll forward**: readings from ``rolled_until`` up to ``now - settle``
   (cut at a whole minute) are aggregated per 1-minute and 1-hour bucket and
   series and *merged* into the stored rows with one ``INSERT ... SELECT ...
   ON CONFLICT DO UPDATE`` per resolution (min of mins, max of maxes, sums of
   sum and count, ``avg = sum / count``). Raw readings within retention stay.
4. **Prune 1-minute rollups** older than ``minute_retention``.
5. **Recompute the 1-day rollups** of every day whose 1-hour rollups steps 2
   and 3 changed: its ``1d`` rows are deleted and rebuilt from the day's
   ``1h`` rows (one ``INSERT ... SELECT ... GROUP BY`` per run of consecutive
   days), so a ``1d`` row always equals the sum of its day's ``1h`` rows,
   whatever order readings arrived in. Steady state that is a day or two of
   1-hour rows (24 per series and day); the first rollup of a large database
   reads each 1-hour row once.

1-hour and 1-day rollups are kept for good: the 1-day level is recomputed from
the 1-hour one (a very late reading can change any day), run summaries read the
1-hour one after the raw readings are gone, and at 24 rows per series and day
they stay small next to the 1-minute level (1,440).

All aggregation happens in SQL: the buckets are computed by
:func:`~gemmawatch.storage.queries.telemetry_buckets.bucket_start`, a per-dialect expression.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from gemmawatch.storage.models import (
    ROLLUP_RESOLUTIONS,
    TelemetryRollup,
    TelemetryRollupState,
    TelemetrySample,
    as_utc,
    utcnow,
)
from gemmawatch.storage.queries._rows import table_of
from gemmawatch.storage.queries.telemetry_buckets import (
    DAY,
    HOUR,
    MINUTE,
    bucket_start,
    dialect_insert,
    floor_time,
    labels_key_sql,
    rollup_state,
    sql_dialect,
)

__all__ = [
    "DEFAULT_MINUTE_RETENTION",
    "DEFAULT_RAW_RETENTION",
    "DEFAULT_SETTLE",
    "pruned_run_readings",
    "pruned_run_summary",
    "rollup_telemetry",
]

#: Raw readings older than this are rolled up and deleted.
DEFAULT_RAW_RETENTION = timedelta(days=7)
#: 1-minute rollups older than this are deleted (1-hour and 1-day rollups are kept for good).
DEFAULT_MINUTE_RETENTION = timedelta(days=90)
#: Readings younger than this are not rolled yet: batches still in flight may belong to their minute.
DEFAULT_SETTLE = timedelta(minutes=1)


def _claim_state(s: Session, dialect: str, now: datetime) -> dict[str, datetime | None]:
    """Lock the state row (creating it if needed) and read it; waits for a concurrent rollup to commit."""
    st = table_of(TelemetryRollupState)
    # A write first: on SQLite it takes the write lock before anything is read.
    s.execute(dialect_insert(dialect, st).values(id=1).on_conflict_do_nothing(index_elements=[st.c.id]))
    row = s.execute(
        update(st)
        .where(st.c.id == 1)
        .values(updated_at=now)
        .returning(st.c.rolled_until, st.c.raw_pruned_until, st.c.minute_pruned_until)
    ).one()
    return {"rolled_until": row[0], "raw_pruned_until": row[1], "minute_pruned_until": row[2]}


# --- rollup -------------------------------------------------------------------------------------


def _merge_into_rollups(s: Session, dialect: str, resolution: str, where: list[ColumnElement[bool]]) -> int:
    """Aggregate raw readings matching ``where`` into ``resolution`` buckets and merge them; rows written."""
    t = table_of(TelemetrySample)
    bucket = bucket_start(dialect, t.c.ts, ROLLUP_RESOLUTIONS[resolution])
    aggregated = (
        select(
            literal_column(f"'{resolution}'"),
            bucket,
            t.c.host,
            t.c.source,
            t.c.metric,
            func.max(t.c.unit),
            t.c.labels,
            labels_key_sql(dialect, t.c.labels),
            t.c.run_id,
            func.coalesce(t.c.run_id, literal_column("0")),
            func.min(t.c.value),
            func.avg(t.c.value),
            func.max(t.c.value),
            func.count(),
            func.sum(t.c.value),
        )
        .where(*where)
        .group_by(bucket, t.c.host, t.c.source, t.c.metric, t.c.labels, t.c.run_id)
    )
    return _insert_merging(s, dialect, aggregated)


#: Columns of a rollup row, in the order the aggregating SELECTs produce them.
_ROLLUP_COLUMNS = [
    "resolution", "bucket_start", "host", "source", "metric", "unit", "labels", "labels_key",
    "run_id", "run_key", "min", "avg", "max", "count", "sum",
]  # fmt: skip


def _insert_merging(s: Session, dialect: str, aggregated: Select[Any]) -> int:
    """``INSERT`` the rollup rows ``aggregated`` selects, merging each into a stored row of its bucket; rows written."""
    r = table_of(TelemetryRollup)
    stmt = dialect_insert(dialect, r).from_select(_ROLLUP_COLUMNS, aggregated)
    new = stmt.excluded
    total_count = r.c["count"] + new["count"]
    total_sum = r.c["sum"] + new["sum"]
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            r.c[name] for name in ("resolution", "bucket_start", "host", "source", "metric", "labels_key", "run_key")
        ],
        set_={
            "min": case((new["min"] < r.c["min"], new["min"]), else_=r.c["min"]),
            "max": case((new["max"] > r.c["max"], new["max"]), else_=r.c["max"]),
            "count": total_count,
            "sum": total_sum,
            "avg": total_sum / total_count,
            "unit": new["unit"],
        },
    )
    # Drivers report an INSERT's rowcount only when asked to keep it.
    result = s.execute(stmt.execution_options(preserve_rowcount=True))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _recompute_days(s: Session, dialect: str, day_from: datetime, day_to: datetime) -> int:
    """Rebuild the ``1d`` rows of the days in ``[day_from, day_to)`` from their ``1h`` rows; rows written.

    Delete, then insert: a series whose 1-hour rows are gone loses its 1-day
    row too. Grouped by ``labels`` as well as ``labels_key`` (PostgreSQL needs
    every selected column grouped, and on PostgreSQL the two are one to one);
    on SQLite the same labels in another key order make a second group, which
    the insert merges into the first.
    """
    r = table_of(TelemetryRollup)
    h = r.alias("hour_rollups")
    day = bucket_start(dialect, h.c.bucket_start, ROLLUP_RESOLUTIONS["1d"])
    total_sum, total_count = func.sum(h.c.sum), func.sum(h.c["count"])
    aggregated = (
        select(
            literal_column("'1d'"),
            day,
            h.c.host,
            h.c.source,
            h.c.metric,
            func.max(h.c.unit),
            h.c.labels,
            h.c.labels_key,
            h.c.run_id,
            h.c.run_key,
            func.min(h.c.min),
            total_sum / total_count,
            func.max(h.c.max),
            total_count,
            total_sum,
        )
        .where(h.c.resolution == "1h", h.c.bucket_start >= day_from, h.c.bucket_start < day_to)
        .group_by(day, h.c.host, h.c.source, h.c.metric, h.c.labels_key, h.c.labels, h.c.run_id, h.c.run_key)
    )
    s.execute(delete(r).where(r.c.resolution == "1d", r.c.bucket_start >= day_from, r.c.bucket_start < day_to))
    return _insert_merging(s, dialect, aggregated)


def _day_ranges(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The whole days covering the time spans ``[start, end)``, as few ``[day_from, day_to)`` ranges as possible."""
    days = sorted(
        (floor_time(start, DAY), floor_time(end - timedelta(microseconds=1), DAY) + DAY)
        for start, end in spans
        if end > start
    )
    ranges: list[tuple[datetime, datetime]] = []
    for day_from, day_to in days:
        if ranges and day_from <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], day_to))
        else:
            ranges.append((day_from, day_to))
    return ranges


def _roll(s: Session, dialect: str, where: list[ColumnElement[bool]], minute_from: datetime) -> dict[str, int]:
    t = table_of(TelemetrySample)
    readings = int(s.execute(select(func.count()).select_from(t).where(*where)).scalar_one())
    if not readings:
        return {"raw_rolled": 0, "minute_rows": 0, "hour_rows": 0}
    return {
        "raw_rolled": readings,
        # No 1-minute rows for buckets that minute_retention would prune right away.
        "minute_rows": _merge_into_rollups(s, dialect, "1m", [*where, t.c.ts >= minute_from]),
        "hour_rows": _merge_into_rollups(s, dialect, "1h", where),
    }


def rollup_telemetry(
    s: Session,
    *,
    now: datetime | None = None,
    raw_retention: timedelta = DEFAULT_RAW_RETENTION,
    minute_retention: timedelta = DEFAULT_MINUTE_RETENTION,
    settle: timedelta = DEFAULT_SETTLE,
) -> dict[str, int]:
    """Roll raw telemetry into 1-minute, 1-hour and 1-day rollups and apply retention (see the module docstring).

    Readings up to ``now - settle`` are added to the rollups (so charts over
    long ranges read rollups, not millions of readings); readings older than
    ``raw_retention`` are then deleted, and 1-minute rollups older than
    ``minute_retention`` (1-hour and 1-day rollups are kept). Idempotent: a
    second call with the same ``now`` changes nothing. Safe to run from
    several processes at once (they serialise on the state row); run it in its
    own transaction (``session_scope``), since it holds the write lock until the commit.

    Returns counts: ``raw_rolled`` (readings aggregated; those of the hours
    being pruned are aggregated again), ``minute_rows`` and ``hour_rows``
    (rollup rows inserted or merged), ``day_rows`` (1-day rows rebuilt),
    ``raw_deleted``, ``minute_deleted``.

    Raises:
        ValueError: a negative retention or settle time, or ``minute_retention < raw_retention``.
    """
    if raw_retention < timedelta(0) or settle < timedelta(0):
        raise ValueError("raw_retention and settle must not be negative")
    if minute_retention < raw_retention:
        raise ValueError(
            f"minute_retention ({minute_retention}) must be at least raw_retention ({raw_retention}): "
            "1-minute rollups are recomputed from the raw readings they replace"
        )
    now = as_utc(now) if now is not None else utcnow()
    dialect = sql_dialect(s)
    t, r, st = table_of(TelemetrySample), table_of(TelemetryRollup), table_of(TelemetryRollupState)
    state = _claim_state(s, dialect, now)
    roll_end = floor_time(now - settle, MINUTE)
    raw_cutoff = min(floor_time(now - raw_retention, HOUR), floor_time(roll_end, HOUR))
    minute_cutoff = floor_time(now - minute_retention, HOUR)
    counts = {
        "raw_rolled": 0, "minute_rows": 0, "hour_rows": 0, "day_rows": 0, "raw_deleted": 0, "minute_deleted": 0,
    }  # fmt: skip
    # Time spans [start, end) whose 1-hour rollups change: their days' 1-day rollups are rebuilt at the end.
    changed: list[tuple[datetime, datetime]] = []

    def add(part: dict[str, int]) -> None:
        for key, value in part.items():
            counts[key] += value

    pruned_until = state["raw_pruned_until"]
    if pruned_until is None or raw_cutoff > pruned_until:
        # The raw readings of [pruned_until, raw_cutoff) are complete: recompute those buckets exactly.
        window = [r.c.resolution.in_(("1m", "1h")), r.c.bucket_start < raw_cutoff]
        if pruned_until is not None:
            window.append(r.c.bucket_start >= pruned_until)
            changed.append((pruned_until, raw_cutoff))
            # Readings older than the last prune (very late ones) are merged into their days.
            late_day = bucket_start(dialect, t.c.ts, ROLLUP_RESOLUTIONS["1d"])
            for day in s.execute(select(late_day).where(t.c.ts < pruned_until).distinct()).scalars():
                changed.append((day, day + DAY))
        else:
            # The first prune: from the oldest reading or 1-hour rollup on (both found by an index).
            oldest = [
                s.execute(select(func.min(t.c.ts)).where(t.c.ts < raw_cutoff)).scalar_one(),
                s.execute(
                    select(func.min(r.c.bucket_start)).where(r.c.resolution == "1h", r.c.bucket_start < raw_cutoff)
                ).scalar_one(),
            ]
            changed.extend((as_utc(first), raw_cutoff) for first in oldest if first is not None)
        s.execute(delete(r).where(*window))
        add(_roll(s, dialect, [t.c.ts < raw_cutoff], minute_cutoff))
        counts["raw_deleted"] = int(s.execute(delete(t).where(t.c.ts < raw_cutoff)).rowcount)  # type: ignore[attr-defined]
        pruned_until = raw_cutoff

    rolled_until = state["rolled_until"]
    roll_start = raw_cutoff if rolled_until is None else max(rolled_until, raw_cutoff)
    if roll_end > roll_start:
        part = _roll(s, dialect, [t.c.ts >= roll_start, t.c.ts < roll_end], minute_cutoff)
        add(part)
        if part["raw_rolled"]:
            changed.append((roll_start, roll_end))
        rolled_until = roll_end

    minute_pruned = state["minute_pruned_until"]
    if minute_pruned is None or minute_cutoff > minute_pruned:
        pruned = s.execute(delete(r).where(r.c.resolution == "1m", r.c.bucket_start < minute_cutoff))
        counts["minute_deleted"] = int(pruned.rowcount)  # type: ignore[attr-defined]
        minute_pruned = minute_cutoff

    for day_from, day_to in _day_ranges(changed):
        counts["day_rows"] += _recompute_days(s, dialect, day_from, day_to)

    s.execute(
        update(st)
        .where(st.c.id == 1)
        .values(rolled_until=rolled_until, raw_pruned_until=pruned_until, minute_pruned_until=minute_pruned)
    )
    return counts


# --- runs whose raw readings were pruned -------------------------------------------------------------


def pruned_run_readings(s: Session, run_id: int, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """A run's telemetry from before the raw prune horizon, as rollup rows shaped like readings.

    1-minute rollups where they are kept, else 1-hour ones: ``value`` is the
    bucket's average, ``ts`` its start, ``interval_s`` its width, ``id`` None.
    Empty while nothing was pruned.
    """
    state = rollup_state(s)
    pruned, minute_pruned = state["raw_pruned_until"], state["minute_pruned_until"]
    if pruned is None:
        return []
    r = table_of(TelemetryRollup)
    parts = [(r.c.resolution == "1m") & (r.c.bucket_start < pruned)]
    if minute_pruned is not None:
        parts = [
            (r.c.resolution == "1m") & (r.c.bucket_start >= minute_pruned) & (r.c.bucket_start < pruned),
            (r.c.resolution == "1h") & (r.c.bucket_start < min(minute_pruned, pruned)),
        ]
    query = select(
        r.c.run_id, r.c.host, r.c.source, r.c.metric, r.c.unit, r.c.avg, r.c.bucket_start, r.c.resolution, r.c.labels
    ).where(r.c.run_id == run_id, or_(*parts))
    if metrics is not None:
        query = query.where(r.c.metric.in_(metrics))
    return [
        {"id": None, "run_id": row.run_id, "host": row.host, "source": row.source, "metric": row.metric,
         "unit": row.unit, "value": row.avg, "ts": row.bucket_start,
         "interval_s": float(ROLLUP_RESOLUTIONS[row.resolution]), "labels": row.labels}
        for row in s.execute(query.order_by(r.c.bucket_start, r.c.id))
    ]  # fmt: skip


def pruned_run_summary(s: Session, run_id: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (source, metric, unit): n, min, max, sum, first_ts, last_ts of a run's pruned readings (1-hour rollups)."""
    pruned = rollup_state(s)["raw_pruned_until"]
    if pruned is None:
        return {}
    r = table_of(TelemetryRollup)
    query = (
        select(
            r.c.source,
            r.c.metric,
            r.c.unit,
            func.sum(r.c["count"]),
            func.min(r.c.min),
            func.max(r.c.max),
            func.sum(r.c.sum),
            func.min(r.c.bucket_start),
            func.max(r.c.bucket_start),
        )
        .where(r.c.run_id == run_id, r.c.resolution == "1h", r.c.bucket_start < pruned)
        .group_by(r.c.source, r.c.metric, r.c.unit)
    )
    return {
        (source, metric, unit): {"n": int(n), "min": float(lo), "max": float(hi), "sum": float(total),
                                 "first_ts": first, "last_ts": last}
        for source, metric, unit, n, lo, hi, total, first, last in s.execute(query)
    }  # fmt: skip
