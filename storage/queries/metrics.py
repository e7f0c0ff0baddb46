"""Aggregate metric results of runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import MetricResult, Run, Target
from gemmawatch.storage.queries._rows import bulk_insert, prepare_rows, table_of

_DEFAULTS: dict[str, Callable[[], Any]] = {"filter": lambda: "none", "details": dict}


def add_metrics(s: Session, run_id: int, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store metric rows (keys = MetricResult columns) for ``run_id``; returns how many.

    Required keys: task, metric, value, n, producer, producer_version.
    ``filter`` defaults to ``"none"`` and ``details`` to ``{}``; the others to NULL.
    """
    prepared = prepare_rows(MetricResult, rows, fixed={"run_id": run_id}, defaults=_DEFAULTS)
    return bulk_insert(s, MetricResult, prepared)


def metrics_for_runs(s: Session, run_ids: Iterable[int]) -> list[dict[str, Any]]:
    """All metrics of the given runs, each dict with every column plus ``target`` (name).

    Ordered by run id, task, metric, filter, so runs can be compared side by side.
    """
    ids = sorted(set(run_ids))
    if not ids:
        return []
    table = table_of(MetricResult)
    query = (
        select(table, Target.name.label("target"))
        .join(Run, Run.id == table.c.run_id)
        .outerjoin(Target, Target.id == Run.target_id)
        .where(table.c.run_id.in_(ids))
        .order_by(table.c.run_id, table.c.task, table.c.metric, table.c.filter, table.c.id)
    )
    return [dict(row) for row in s.execute(query).mappings()]
