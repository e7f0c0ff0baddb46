"""Per-document samples of runs: storing them and paging through them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Sample
from gemmawatch.storage.queries._rows import bulk_insert, prepare_rows, table_of

if TYPE_CHECKING:
    from gemmawatch.evals.safety.storage_policy import TextPolicy

_DEFAULTS: dict[str, Callable[[], Any]] = {"output": lambda: "", "scores": dict}
#: The sample columns a TextPolicy rewrites.
_POLICY_COLUMNS = ("prompt", "output")


def add_samples(
    s: Session, run_id: int, rows: Iterable[Mapping[str, Any]], *, text_policy: TextPolicy | None = None
) -> int:
    """Store sample rows (keys = Sample columns) for ``run_id``; returns how many.

    Required keys: task, doc_id, prompt. ``output`` defaults to ``""`` (a
    failed generation), ``scores`` to ``{}``. A chat prompt (list of messages)
    is stored as its JSON text.

    ``text_policy`` (the config's ``store_text``, see
    :mod:`gemmawatch.evals.safety.storage_policy`) rewrites ``prompt`` and ``output``
    before they are written: kept in clear, redacted, or replaced by a hash. A chat
    prompt is rewritten as its JSON text. ``None`` stores them as given. Score
    everything *before* storing: what is stored may no longer be the text.
    """
    materialised = [_text_prompt(row) for row in rows]
    if text_policy is not None:
        materialised = [_apply_policy(row, text_policy) for row in materialised]
    prepared = prepare_rows(Sample, materialised, fixed={"run_id": run_id}, defaults=_DEFAULTS)
    return bulk_insert(s, Sample, prepared)


def list_samples(
    s: Session,
    run_id: int,
    *,
    task: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """One page of a run's samples ordered by task, doc_id, as dicts of all columns.

    ``search`` matches a case-insensitive substring of the prompt or the output
    (``%`` and ``_`` are literal).
    """
    table = table_of(Sample)
    query = (
        select(table)
        .where(*_conditions(run_id, task, search))
        .order_by(table.c.task, table.c.doc_id, table.c.id)
        .offset(max(offset, 0))
        .limit(max(limit, 0))
    )
    return [dict(row) for row in s.execute(query).mappings()]


def count_samples(s: Session, run_id: int, task: str | None = None, search: str | None = None) -> int:
    """How many samples :func:`list_samples` would page through."""
    query = select(func.count()).select_from(table_of(Sample)).where(*_conditions(run_id, task, search))
    return int(s.scalar(query) or 0)


def tasks_for_run(s: Session, run_id: int) -> list[str]:
    """The distinct task names of a run's samples, sorted."""
    query = select(Sample.task).where(Sample.run_id == run_id).distinct().order_by(Sample.task)
    return list(s.scalars(query))


def _conditions(run_id: int, task: str | None, search: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Sample.run_id == run_id]
    if task is not None:
        conditions.append(Sample.task == task)
    if search:
        # lower() + LIKE works on every dialect (ILIKE is PostgreSQL-only and
        # SQLite's LIKE folds ASCII only); autoescape keeps % and _ literal.
        needle = search.lower()
        conditions.append(
            or_(
                func.lower(Sample.prompt).contains(needle, autoescape=True),
                func.lower(Sample.output).contains(needle, autoescape=True),
            )
        )
    return conditions


def _text_prompt(row: Mapping[str, Any]) -> Mapping[str, Any]:
    prompt = row.get("prompt")
    if prompt is None or isinstance(prompt, str):
        return row
    return {**row, "prompt": json.dumps(prompt, ensure_ascii=False, default=str)}


def _apply_policy(row: Mapping[str, Any], policy: TextPolicy) -> Mapping[str, Any]:
    changed = {k: policy.apply(row[k]) for k in _POLICY_COLUMNS if isinstance(row.get(k), str)}
    return {**row, **changed} if changed else row
