"""Runs: creating, finishing, listing, summarising and deleting them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from gemmawatch.errors import UnknownNameError
from gemmawatch.storage.models import (
    RUN_STATUSES,
    LoadRequest,
    MetricResult,
    Run,
    Sample,
    Target,
    TelemetrySample,
    utcnow,
)
from gemmawatch.storage.queries._rows import table_of

#: Metric fields returned in :func:`run_summary` (and by metrics_for_runs).
METRIC_FIELDS = (
    "task",
    "metric",
    "filter",
    "value",
    "stderr",
    "ci_low",
    "ci_high",
    "n",
    "higher_is_better",
    "producer",
    "producer_version",
    "task_version",
)


def create_run(
    s: Session,
    *,
    kind: str,
    target_id: int | None,
    config: Mapping[str, Any],
    host: str,
    versions: Mapping[str, Any],
    label: str | None = None,
) -> int:
    """Record a new run with status ``running``; returns its id."""
    run = Run(
        kind=kind,
        target_id=target_id,
        label=label,
        status="running",
        started_at=utcnow(),
        host=host,
        versions=dict(versions),
        config=dict(config),
    )
    s.add(run)
    s.flush()
    return run.id


def finish_run(s: Session, run_id: int, *, status: str, error: str | None = None) -> None:
    """Set the final ``status`` (completed/failed/partial) and ``finished_at`` of a run."""
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
    result = s.execute(update(Run).where(Run.id == run_id).values(status=status, error=error, finished_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownNameError(f"Unknown run id {run_id}. Fix: list runs with `gemmawatch runs list`")


def merge_run_config(s: Session, run_id: int, entries: Mapping[str, Any]) -> None:
    """Add ``entries`` to a run's stored config (e.g. what the backend reported once loaded).

    Raises:
        UnknownNameError: No run has this id.
    """
    config = s.scalar(select(Run.config).where(Run.id == run_id))
    if config is None and s.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise UnknownNameError(f"Unknown run {run_id}. Fix: list runs with `gemmawatch runs list`")
    s.execute(update(Run).where(Run.id == run_id).values(config={**(config or {}), **dict(entries)}))


def list_runs(
    s: Session, *, limit: int = 100, kind: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Newest runs first. Keys: id, kind, target (name), label, status, started_at, finished_at, error."""
    query = (
        select(
            Run.id,
            Run.kind,
            Target.name.label("target"),
            Run.label,
            Run.status,
            Run.started_at,
            Run.finished_at,
            Run.error,
        )
        .outerjoin(Target, Run.target_id == Target.id)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(Run.kind == kind)
    if status is not None:
        query = query.where(Run.status == status)
    return [dict(row) for row in s.execute(query).mappings()]


def run_target(s: Session, run_id: int) -> tuple[int | None, str | None]:
    """``(target_id, target name)`` of a run (both None without a target).

    Raises:
        UnknownNameError: No run has this id.
    """
    row = s.execute(
        select(Run.id, Run.target_id, Target.name).outerjoin(Target, Run.target_id == Target.id).where(Run.id == run_id)
    ).first()
    if row is None:
        raise UnknownNameError(f"Unknown run {run_id}. Fix: list runs with `gemmawatch runs list`")
    return row.target_id, row.name


def run_summary(s: Session, run_id: int) -> dict[str, Any] | None:
    """Everything the run page shows at the top, or None if there is no such run.

    Keys: id, kind, target, target_info (backend, model_id, revision, dtype,
    quantization; None without a target), label, status, started_at,
    finished_at, error, host, versions, config, metrics (list of dicts with
    :data:`METRIC_FIELDS`), samples_count, telemetry_count, load_requests_count.
    """
    runs = table_of(Run)
    row = (
        s.execute(
            select(
                runs,
                Target.name.label("target_name"),
                Target.backend,
                Target.model_id,
                Target.revision,
                Target.dtype,
                Target.quantization,
            )
            .outerjoin(Target, runs.c.target_id == Target.id)
            .where(runs.c.id == run_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    target_info = None
    if row["target_id"] is not None:
        target_info = {key: row[key] for key in ("backend", "model_id", "revision", "dtype", "quantization")}
    metric_columns = [getattr(MetricResult, field) for field in METRIC_FIELDS]
    metrics = s.execute(
        select(*metric_columns)
        .where(MetricResult.run_id == run_id)
        .order_by(MetricResult.task, MetricResult.metric, MetricResult.filter, MetricResult.id)
    ).mappings()
    return {
        "id": row["id"],
        "kind": row["kind"],
        "target": row["target_name"],
        "target_info": target_info,
        "label": row["label"],
        "status": row["status"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "error": row["error"],
        "host": row["host"],
        "versions": row["versions"],
        "config": row["config"],
        "metrics": [dict(metric) for metric in metrics],
        "samples_count": _count(s, Sample.run_id == run_id),
        "telemetry_count": _count(s, TelemetrySample.run_id == run_id),
        "load_requests_count": _count(s, LoadRequest.run_id == run_id),
    }


def _count(s: Session, condition: ColumnElement[bool]) -> int:
    return int(s.scalar(select(func.count()).where(condition)) or 0)


def delete_run(s: Session, run_id: int) -> bool:
    """Delete a run with its metrics, samples, telemetry and load requests; False if it did not exist.

    Children go through ``ON DELETE CASCADE`` in the database; alerts keep
    their history with ``run_id`` set to NULL.
    """
    result = s.execute(delete(Run).where(Run.id == run_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
