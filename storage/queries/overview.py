"""What the dashboard's Overview needs, aggregated in SQL: run counts, daily activity, each target's last probe.

Probe telemetry follows the monitor's contract
(:mod:`gemmawatch.collectors.monitor.probes`): source ``probe``, metrics
``probe.up`` (1 answered / 0 failed) and ``probe.e2e_s``, label ``target``.
SQLite and PostgreSQL only (day buckets come from ``telemetry_buckets``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Alert, Run, TelemetrySample, as_utc
from gemmawatch.storage.queries._rows import table_of
from gemmawatch.storage.queries.telemetry_buckets import bucket_start, sql_dialect

__all__ = ["PROBE_SOURCE", "daily_activity", "run_status_counts", "target_probes"]

#: ``TelemetrySample.source`` of the monitor's probes.
PROBE_SOURCE = "probe"
_DAY_S = 86400


def run_status_counts(s: Session) -> dict[str, int]:
    """Number of runs per status (``completed``, ``failed``, ``running``, ...); one grouped count."""
    query = select(Run.status, func.count()).group_by(Run.status)
    return {str(status): int(n) for status, n in s.execute(query)}


def _day(value: Any) -> datetime:
    # SQLite buckets come back as text, PostgreSQL's as datetimes.
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return as_utc(value)


def daily_activity(s: Session, since: datetime) -> list[dict[str, Any]]:
    """Per UTC day since ``since`` that had any: ``day``, ``runs`` started, ``failed`` runs, ``alerts`` fired.

    Days without activity are left out (the caller fills the gaps); time order.
    """
    dialect = sql_dialect(s)
    since = as_utc(since)
    r, a = table_of(Run), table_of(Alert)
    run_day = bucket_start(dialect, r.c.started_at, _DAY_S)
    failed = func.sum(case((r.c.status.in_(["failed", "partial"]), 1), else_=0))
    runs = select(run_day.label("day"), func.count().label("n"), failed.label("failed")).where(r.c.started_at >= since)
    alert_day = bucket_start(dialect, a.c.fired_at, _DAY_S)
    alerts = select(alert_day.label("day"), func.count().label("n")).where(a.c.fired_at >= since)
    days: dict[datetime, dict[str, Any]] = {}

    def entry(day: Any) -> dict[str, Any]:
        key = _day(day)
        return days.setdefault(key, {"day": key, "runs": 0, "failed": 0, "alerts": 0})

    for day, n, n_failed in s.execute(runs.group_by(run_day)):
        item = entry(day)
        item["runs"], item["failed"] = int(n), int(n_failed or 0)
    for day, n in s.execute(alerts.group_by(alert_day)):
        entry(day)["alerts"] = int(n)
    return [days[k] for k in sorted(days)]


def _target_label(column: ColumnElement[Any]) -> ColumnElement[str]:
    return cast(column["target"].as_string(), String())


def _last_per_target(s: Session, metric: str, since: datetime) -> dict[str, dict[str, Any]]:
    """The latest reading of ``metric`` per target label since ``since`` (ties: the lowest value)."""
    t = table_of(TelemetrySample)
    target = _target_label(t.c.labels)
    where = [t.c.metric == metric, t.c.source == PROBE_SOURCE, t.c.ts >= since]
    latest = (
        select(
            target.label("target"),
            func.max(t.c.ts).label("last_ts"),
            func.avg(t.c.value).label("mean"),
            func.count().label("n"),
        )
        .where(*where)
        .group_by(target)
        .subquery()
    )
    query = (
        select(
            latest.c.target,
            latest.c.last_ts,
            latest.c.mean,
            latest.c.n,
            func.min(t.c.value).label("value"),
            func.max(t.c.interval_s).label("interval_s"),
            func.max(cast(t.c.labels["error_class"].as_string(), String())).label("error_class"),
        )
        .join(t, and_(*where[:2], t.c.ts == latest.c.last_ts, target == latest.c.target))
        .group_by(latest.c.target, latest.c.last_ts, latest.c.mean, latest.c.n)
    )
    return {
        str(row.target): {
            "last_ts": as_utc(row.last_ts),
            "value": float(row.value),
            "mean": float(row.mean),
            "n": int(row.n),
            "interval_s": float(row.interval_s or 0.0),
            "error_class": row.error_class,
        }
        for row in s.execute(query)
        if row.target is not None
    }


def target_probes(s: Session, since: datetime) -> list[dict[str, Any]]:
    """Each probed target's last probe since ``since``, sorted by target name.

    Keys: ``target``; ``last_ts``, ``up`` (the last ``probe.up``: 1.0/0.0; 0 when
    any probe of that instant failed), ``error_class`` (of a failed last probe),
    ``interval_s`` (probe interval), ``uptime`` (mean ``probe.up`` since
    ``since``) and ``n`` (probes behind it); ``e2e_s`` and ``e2e_ts``: the last
    answered probe's latency (None when none answered).
    """
    sql_dialect(s)  # SQLite/PostgreSQL only, like the rest of the telemetry queries
    up = _last_per_target(s, "probe.up", as_utc(since))
    e2e = _last_per_target(s, "probe.e2e_s", as_utc(since))
    rows = []
    for target in sorted(up):
        item, latency = up[target], e2e.get(target)
        rows.append(
            {
                "target": target,
                "last_ts": item["last_ts"],
                "up": item["value"],
                "error_class": item["error_class"] if item["value"] < 1 else None,
                "interval_s": item["interval_s"],
                "uptime": item["mean"],
                "n": item["n"],
                "e2e_s": latency["value"] if latency else None,
                "e2e_ts": latency["last_ts"] if latency else None,
            }
        )
    return rows
