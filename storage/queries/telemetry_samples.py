"""Per-sample attribution: the telemetry of the time window each sample ran in.

A sample that stored ``started_at`` and ``latency_s`` ran during ``[started_at,
started_at + latency_s]``. Those windows are sent to the database as a
``VALUES`` list and joined with the run's telemetry on ``ts`` (the
``(run_id, metric, ts)`` index serves the join), and the mean, max and count
per window and metric are computed there. Windows are computed in Python so
they are exact to the microsecond on both dialects (SQLite's date functions
stop at milliseconds). Re-exported by :mod:`gemmawatch.storage.queries.telemetry`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Integer, column, func, select, values
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Sample, TelemetrySample, UTCDateTime
from gemmawatch.storage.queries._rows import table_of

#: Metrics :func:`sample_resources` reports by default.
DEFAULT_SAMPLE_METRICS: tuple[str, ...] = (
    "cpu.percent",
    "process.cpu_percent",
    "process.rss_mb",
    "gpu.utilization",
    "gpu.memory_used_mb",
    "gpu.power_w",
)
ENERGY_METRIC = "gpu.energy_j"
_CHUNK = 500  # windows per statement: 3 bind parameters each, far below every driver's limit

Window = tuple[int, datetime, datetime]  # (sample id, start, end)


def _chunks(items: Sequence[Window]) -> Iterator[Sequence[Window]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _windows_table(windows: Sequence[Window]) -> CTE:
    """The windows as ``WITH windows(sample_id, w_start, w_end) AS (VALUES ...)``.

    A CTE, because SQLite does not accept column names on a ``(VALUES ...) AS t (a, b)`` alias.
    """
    rows = values(
        column("sample_id", Integer),
        column("w_start", UTCDateTime()),
        column("w_end", UTCDateTime()),
        name="windows",
    ).data(list(windows))
    return rows.cte("windows")


def _max_intervals(s: Session, run_id: int, metrics: Sequence[str]) -> dict[str, float]:
    t = table_of(TelemetrySample)
    query = (
        select(t.c.metric, func.max(t.c.interval_s))
        .where(t.c.run_id == run_id, t.c.metric.in_(metrics))
        .group_by(t.c.metric)
    )
    return {metric: float(interval) for metric, interval in s.execute(query) if interval is not None}


def _aggregates(
    s: Session, run_id: int, metrics: Sequence[str], windows: Sequence[Window]
) -> dict[tuple[int, str], dict[str, Any]]:
    """(sample id, metric) -> mean/max/n of the readings inside each window, aggregated in SQL."""
    t = table_of(TelemetrySample)
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for chunk in _chunks(windows):
        w = _windows_table(chunk)
        query = (
            select(
                w.c.sample_id,
                t.c.metric,
                func.avg(t.c.value).label("mean"),
                func.max(t.c.value).label("max"),
                func.count().label("n"),
            )
            .select_from(w)
            .join(t, (t.c.ts >= w.c.w_start) & (t.c.ts <= w.c.w_end))
            .where(t.c.run_id == run_id, t.c.metric.in_(metrics))
            .group_by(w.c.sample_id, t.c.metric)
        )
        for row in s.execute(query).mappings():
            out[(row["sample_id"], row["metric"])] = {
                "mean": float(row["mean"]),
                "max": float(row["max"]),
                "n": int(row["n"]),
                "nearest": False,
            }
    return out


def _readings_near(
    s: Session, run_id: int, metrics: Sequence[str], windows: Sequence[Window], reach_s: float
) -> dict[int, list[dict[str, Any]]]:
    """Per sample id: the readings of ``metrics`` within ``reach_s`` of its window (either side)."""
    t = table_of(TelemetrySample)
    reach = timedelta(seconds=reach_s)
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    widened = [(sid, start - reach, end + reach) for sid, start, end in windows]
    for chunk in _chunks(widened):
        w = _windows_table(chunk)
        query = (
            select(w.c.sample_id, t.c.metric, t.c.ts, t.c.value, t.c.interval_s, t.c.host, t.c.labels)
            .select_from(w)
            .join(t, (t.c.ts >= w.c.w_start) & (t.c.ts <= w.c.w_end))
            .where(t.c.run_id == run_id, t.c.metric.in_(metrics))
            .order_by(w.c.sample_id, t.c.ts, t.c.id)
        )
        for row in s.execute(query).mappings():
            found[row["sample_id"]].append(dict(row))
    return found


def _nearest(readings: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any] | None:
    """Mean/max of the readings of the tick nearest the window, if within their own interval of it."""
    best: float | None = None
    chosen: list[float] = []
    for r in readings:
        ts = r["ts"]
        gap = (start - ts).total_seconds() if ts < start else (ts - end).total_seconds()
        if gap > float(r["interval_s"]):
            continue
        if best is None or gap < best:
            best, chosen = gap, [float(r["value"])]
        elif gap == best:
            chosen.append(float(r["value"]))
    if not chosen:
        return None
    return {"mean": sum(chosen) / len(chosen), "max": max(chosen), "n": len(chosen), "nearest": True}


def sample_resources(
    s: Session,
    run_id: int,
    *,
    task: str | None = None,
    metrics: Sequence[str] = DEFAULT_SAMPLE_METRICS,
) -> list[dict[str, Any]]:
    """The resource use of each sample of run ``run_id`` (optionally one ``task``) during its own window.

    Samples without ``started_at`` or ``latency_s`` (lm-eval loglikelihood
    items) are left out. For each sample and metric: the mean, max and count
    of the readings with ``started_at <= ts <= started_at + latency_s``, over
    all the metric's series (every GPU, every pid); when the window holds none
    (a request shorter than the sampling interval), the readings of the tick
    nearest the window, if that tick lies within the readings' own
    ``interval_s`` of it (marked ``nearest: True``); else ``None``.

    Where the run has ``gpu.energy_j`` readings bracketing a window,
    ``energy_j`` is the GPU energy spent in it (counter interpolated, summed
    over devices: :func:`~gemmawatch.collectors.telemetry.energy.energy_in_window`)
    and ``energy_per_output_token_j`` that divided by the sample's output tokens.

    Returns:
        Dicts in (task, doc_id) order: ``sample_id``, ``task``, ``doc_id``,
        ``started_at``, ``ended_at``, ``latency_s``, ``output_tokens``,
        ``metrics`` ({metric: {mean, max, n, nearest} or None}), ``energy_j``,
        ``energy_per_output_token_j`` (both None without an energy counter).
    """
    from gemmawatch.collectors.telemetry.energy import energy_in_window

    metrics = list(dict.fromkeys(metrics))
    table = table_of(Sample)
    query = (
        select(table.c.id, table.c.task, table.c.doc_id, table.c.started_at, table.c.latency_s, table.c.output_tokens)
        .where(table.c.run_id == run_id, table.c.started_at.is_not(None), table.c.latency_s.is_not(None))
        .order_by(table.c.task, table.c.doc_id, table.c.id)
    )
    if task is not None:
        query = query.where(table.c.task == task)
    samples = [dict(row) for row in s.execute(query).mappings()]
    windows: list[Window] = [
        (row["id"], row["started_at"], row["started_at"] + timedelta(seconds=max(0.0, float(row["latency_s"]))))
        for row in samples
    ]
    found = _aggregates(s, run_id, metrics, windows) if metrics and windows else {}
    reach = _max_intervals(s, run_id, [*metrics, ENERGY_METRIC]) if windows else {}
    missing = [w for w in windows if any((w[0], m) not in found for m in metrics if m in reach)]
    near_metrics = [m for m in metrics if m in reach]
    near = _readings_near(s, run_id, near_metrics, missing, max(reach[m] for m in near_metrics)) if missing else {}
    energy_rows: dict[int, list[dict[str, Any]]] = {}
    if ENERGY_METRIC in reach:
        energy_rows = _readings_near(s, run_id, [ENERGY_METRIC], windows, reach[ENERGY_METRIC])
    out = []
    for row, (sid, start, end) in zip(samples, windows, strict=True):
        per_metric: dict[str, dict[str, Any] | None] = {}
        for metric in metrics:
            per_metric[metric] = found.get((sid, metric)) or _nearest(
                [r for r in near.get(sid, ()) if r["metric"] == metric], start, end
            )
        energy = energy_in_window(energy_rows.get(sid, ()), start, end)
        tokens = row["output_tokens"]
        out.append(
            {
                "sample_id": sid,
                "task": row["task"],
                "doc_id": row["doc_id"],
                "started_at": start,
                "ended_at": end,
                "latency_s": float(row["latency_s"]),
                "output_tokens": tokens,
                "metrics": per_metric,
                "energy_j": energy,
                "energy_per_output_token_j": energy / tokens if energy is not None and tokens else None,
            }
        )
    return out
