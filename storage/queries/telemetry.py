"""Telemetry readings: bulk storage, per-run series and SQL-side summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import TelemetrySample
from gemmawatch.storage.queries._rows import bulk_insert, prepare_rows, table_of

# Retention and downsampling live in telemetry_rollups.py and telemetry_series.py; part of this module's API.
from gemmawatch.storage.queries.telemetry_rollups import pruned_run_readings, pruned_run_summary
from gemmawatch.storage.queries.telemetry_rollups import rollup_telemetry as rollup_telemetry
from gemmawatch.storage.queries.telemetry_series import telemetry_series as telemetry_series

_DEFAULTS: dict[str, Callable[[], Any]] = {"labels": dict}


def add_telemetry(s: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store readings (keys: run_id, host, source, metric, unit, value, ts, interval_s, labels).

    ``run_id`` may be None (monitoring outside a run); ``labels`` defaults to
    ``{}``; ``ts`` is an aware datetime (or epoch seconds). Returns how many.
    """
    return bulk_insert(s, TelemetrySample, prepare_rows(TelemetrySample, rows, defaults=_DEFAULTS))


def telemetry_for_run(s: Session, run_id: int, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """A run's readings in time order, optionally only ``metrics``; dicts of all columns.

    Readings deleted by the raw retention (:func:`rollup_telemetry`) come back
    as their 1-minute (or 1-hour) rollups: ``value`` is the bucket average,
    ``ts`` the bucket start, ``interval_s`` the bucket width, ``id`` None.
    """
    table = table_of(TelemetrySample)
    query = select(table).where(table.c.run_id == run_id).order_by(table.c.ts, table.c.id)
    if metrics is not None:
        query = query.where(table.c.metric.in_(metrics))
    return [*pruned_run_readings(s, run_id, metrics), *(dict(row) for row in s.execute(query).mappings())]


def telemetry_summary(s: Session, run_id: int) -> list[dict[str, Any]]:
    """Per (source, metric, unit) of a run: n, min, avg, max, interval_s (mean), first_ts, last_ts."""
    t = table_of(TelemetrySample)
    query = (
        select(
            t.c.source,
            t.c.metric,
            t.c.unit,
            func.count().label("n"),
            func.min(t.c.value).label("min"),
            func.avg(t.c.value).label("avg"),
            func.max(t.c.value).label("max"),
            func.avg(t.c.interval_s).label("interval_s"),
            func.min(t.c.ts).label("first_ts"),
            func.max(t.c.ts).label("last_ts"),
        )
        .where(t.c.run_id == run_id)
        .group_by(t.c.source, t.c.metric, t.c.unit)
        .order_by(t.c.source, t.c.metric, t.c.unit)
    )
    summary = []
    for row in s.execute(query).mappings():
        item = dict(row)
        # PostgreSQL's avg() may come back as Decimal; callers expect floats.
        for key in ("min", "avg", "max", "interval_s"):
            item[key] = float(item[key]) if item[key] is not None else None
        summary.append(item)
    return _with_pruned(summary, pruned_run_summary(s, run_id))


def _with_pruned(
    summary: list[dict[str, Any]], pruned: dict[tuple[str, str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Fold the 1-hour rollups of readings deleted by retention into the raw summary rows."""
    if not pruned:
        return summary
    rows = {(item["source"], item["metric"], item["unit"]): item for item in summary}
    for key, old in pruned.items():
        item = rows.get(key)
        if item is None:
            rows[key] = {
                "source": key[0], "metric": key[1], "unit": key[2], "n": old["n"], "min": old["min"],
                "avg": old["sum"] / old["n"], "max": old["max"], "interval_s": None,
                "first_ts": old["first_ts"], "last_ts": old["last_ts"],
            }  # fmt: skip
            continue
        n = item["n"] + old["n"]
        item["avg"] = (item["avg"] * item["n"] + old["sum"]) / n
        item["n"] = n
        item["min"], item["max"] = min(item["min"], old["min"]), max(item["max"], old["max"])
        item["first_ts"] = min(item["first_ts"], old["first_ts"])
        item["last_ts"] = max(item["last_ts"], old["last_ts"])
    return [rows[key] for key in sorted(rows)]


# --------------------------------------------------------------------------- #
# Alert windows (owner: alerts). Raw readings only: alert windows are minutes
# long, far inside the raw retention.
# --------------------------------------------------------------------------- #


def _labels_match(labels: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(k in labels and str(labels[k]) == str(v) for k, v in wanted.items())


def telemetry_window_rows(
    s: Session,
    *,
    metric: str,
    start: datetime,
    end: datetime,
    target: str | None = None,
    host: str | None = None,
    labels: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Readings of ``metric`` with ``start <= ts <= end``, in time order (keys: ts, value, host, labels, run_id).

    ``target`` is an fnmatch glob over the ``target`` label (readings without
    one do not match); ``labels`` must all be present with equal values
    (compared as text; other labels are ignored); ``host`` is exact.
    """
    t = table_of(TelemetrySample)
    query = (
        select(t.c.ts, t.c.value, t.c.host, t.c.labels, t.c.run_id)
        .where(t.c.metric == metric, t.c.ts >= start, t.c.ts <= end)
        .order_by(t.c.ts, t.c.id)
    )
    if host is not None:
        query = query.where(t.c.host == host)
    wanted = dict(labels or {})
    out = []
    for row in s.execute(query).mappings():
        row_labels = row["labels"] or {}
        if wanted and not _labels_match(row_labels, wanted):
            continue
        if target is not None:
            name = row_labels.get("target")
            if name is None or not fnmatchcase(str(name), target):
                continue
        out.append(dict(row))
    return out


def telemetry_window(
    s: Session,
    *,
    metric: str,
    start: datetime,
    end: datetime,
    target: str | None = None,
    host: str | None = None,
    labels: Mapping[str, Any] | None = None,
) -> list[tuple[datetime, float]]:
    """``(ts, value)`` of the readings :func:`telemetry_window_rows` selects, in time order."""
    rows = telemetry_window_rows(s, metric=metric, start=start, end=end, target=target, host=host, labels=labels)
    return [(row["ts"], float(row["value"])) for row in rows]


# --------------------------------------------------------------------------- #
# Per-sample attribution (owner: telemetry): each sample's resource use and
# energy during its own time window; the code lives in telemetry_samples.py.
# --------------------------------------------------------------------------- #

from gemmawatch.storage.queries.telemetry_samples import DEFAULT_SAMPLE_METRICS as DEFAULT_SAMPLE_METRICS  # noqa: E402
from gemmawatch.storage.queries.telemetry_samples import sample_resources as sample_resources  # noqa: E402
