"""What the Telemetry page can draw: metrics with readings in a time range, hosts, a run's sample windows.

Distinct metrics come from a skip scan of the ``(metric, ts)`` indexes (one
``min(metric) > previous`` seek per metric, then one probe of the range), so
the cost follows the number of metrics, not of readings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Run, Sample, TelemetryRollup, TelemetrySample, as_utc
from gemmawatch.storage.queries._rows import table_of

__all__ = ["MAX_METRICS", "count_sample_windows", "metrics_in_range", "run_hosts", "sample_windows"]

#: Most metrics listed (a guard against a runaway label explosion in metric names).
MAX_METRICS = 500
_DAY = timedelta(days=1)


def _distinct_metrics(s: Session, table: Table) -> list[str]:
    names: list[str] = []
    previous: str | None = None
    while len(names) < MAX_METRICS:
        query = select(func.min(table.c.metric))
        if previous is not None:
            query = query.where(table.c.metric > previous)
        name = s.execute(query).scalar()
        if name is None:
            break
        names.append(previous := str(name))
    return names


def metrics_in_range(s: Session, start: datetime, end: datetime, *, run_id: int | None = None) -> list[dict[str, Any]]:
    """Metrics with a reading (raw, or a rollup of pruned ones) in ``[start, end]``: metric, source, unit.

    ``run_id`` keeps those of one run. Sorted by metric.
    """
    start, end = as_utc(start), as_utc(end)
    t, r = table_of(TelemetrySample), table_of(TelemetryRollup)
    found: dict[str, dict[str, Any]] = {}
    for name in _distinct_metrics(s, t):
        query = select(t.c.source, t.c.unit).where(t.c.metric == name, t.c.ts >= start, t.c.ts <= end)
        if run_id is not None:
            query = query.where(t.c.run_id == run_id)
        row = s.execute(query.limit(1)).first()
        if row is not None:
            found[name] = {"metric": name, "source": row.source, "unit": row.unit}
    for name in _distinct_metrics(s, r):
        if name in found:
            continue
        query = select(r.c.source, r.c.unit).where(
            r.c.metric == name, r.c.bucket_start >= start - _DAY, r.c.bucket_start <= end
        )
        if run_id is not None:
            query = query.where(r.c.run_id == run_id)
        row = s.execute(query.limit(1)).first()
        if row is not None:
            found[name] = {"metric": name, "source": row.source, "unit": row.unit}
    return [found[k] for k in sorted(found)]


def run_hosts(s: Session) -> list[str]:
    """Hosts that ran something (runs carry their host; the monitor's run carries the monitor's)."""
    return [str(h) for h in s.execute(select(Run.host).distinct().order_by(Run.host)).scalars()]


def _windows_where(run_id: int) -> list[Any]:
    t = table_of(Sample)
    return [t.c.run_id == run_id, t.c.started_at.is_not(None), t.c.latency_s.is_not(None)]


def sample_windows(s: Session, run_id: int, *, limit: int = 2000) -> list[dict[str, Any]]:
    """The first ``limit`` timed samples of a run by start: id, task, doc_id, started_at, latency_s, ttft_s, error.

    A sample ran during ``[started_at, started_at + latency_s]``; samples without either are left out.
    """
    t = table_of(Sample)
    query = (
        select(t.c.id, t.c.task, t.c.doc_id, t.c.started_at, t.c.latency_s, t.c.ttft_s, t.c.error)
        .where(*_windows_where(run_id))
        .order_by(t.c.started_at, t.c.id)
        .limit(max(limit, 0))
    )
    return [dict(row) for row in s.execute(query).mappings()]


def count_sample_windows(s: Session, run_id: int) -> int:
    """How many samples of a run have a time window (``started_at`` and ``latency_s``)."""
    return int(
        s.execute(select(func.count()).select_from(table_of(Sample)).where(*_windows_where(run_id))).scalar_one()
    )
