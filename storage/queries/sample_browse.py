"""Browsing a run's samples for the Evaluations page: per-task aggregates, filtered pages, pairs of two runs.

Everything that scales with the number of samples runs in the database: the per-task
counts and means (``GROUP BY``), the score filter (a JSON path on ``scores``: SQLite's
``json_extract``, PostgreSQL's ``->>``, both through SQLAlchemy's JSON index), the
pagination, and the pairing of two runs' items by ``(task, doc_id)`` (a join), the key
``gemmawatch compare`` pairs by.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from gemmawatch.storage.models import Sample
from gemmawatch.storage.queries._rows import table_of
from gemmawatch.storage.queries.samples import search_conditions

__all__ = [
    "MAX_PAIRS",
    "OUTCOMES",
    "count_filtered_samples",
    "filtered_samples",
    "paired_samples",
    "task_summary",
]

#: Sample filters: every sample, only failed generations, or by one score against a threshold.
OUTCOMES = ("all", "errors", "at_least", "below")
#: Most pairs :func:`paired_samples` returns unless told otherwise.
MAX_PAIRS = 20_000


def task_summary(s: Session, run_id: int) -> list[dict[str, Any]]:
    """Per task of a run: ``n``, ``errors`` (samples whose generation failed), ``latency_s_mean``,
    ``latency_s_max``, ``ttft_s_mean``, ``output_tokens_mean``, ordered by task (one ``GROUP BY``)."""
    query = (
        select(
            Sample.task,
            func.count().label("n"),
            func.count(Sample.error).label("errors"),
            func.avg(Sample.latency_s).label("latency_s_mean"),
            func.max(Sample.latency_s).label("latency_s_max"),
            func.avg(Sample.ttft_s).label("ttft_s_mean"),
            func.avg(Sample.output_tokens).label("output_tokens_mean"),
        )
        .where(Sample.run_id == run_id)
        .group_by(Sample.task)
        .order_by(Sample.task)
    )
    out = []
    for row in s.execute(query).mappings():
        item = dict(row)
        # PostgreSQL's avg() may come back as Decimal; callers expect floats.
        for key in ("latency_s_mean", "latency_s_max", "ttft_s_mean", "output_tokens_mean"):
            item[key] = float(item[key]) if item[key] is not None else None
        out.append(item)
    return out


def _numeric_score(dialect: str, key: str) -> ColumnElement[Any]:
    """The sample score ``key`` as a float in SQL; NULL where it is not a number (booleans count 1/0)."""
    value = Sample.scores[key]
    if dialect != "postgresql":
        return value.as_float()  # SQLite's json_extract gives numbers as they are and true/false as 1/0
    # A plain cast would fail on the first non-number (PostgreSQL casts the text of the value).
    kind = func.jsonb_typeof(Sample.scores.op("->")(key))
    return case(
        (kind == "number", value.as_float()),
        (kind == "boolean", case((value.as_boolean(), 1.0), else_=0.0)),
        else_=None,
    )


def _filters(
    dialect: str,
    run_id: int,
    task: str | None,
    search: str | None,
    outcome: str,
    score_key: str | None,
    threshold: float,
) -> list[ColumnElement[bool]]:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    conditions = search_conditions(run_id, task, search)
    if outcome == "errors":
        conditions.append(Sample.error.is_not(None))
    elif outcome in ("at_least", "below") and score_key:
        # A sample without this score (NULL) matches neither side.
        score = _numeric_score(dialect, score_key)
        conditions.append(score >= threshold if outcome == "at_least" else score < threshold)
    return conditions


def filtered_samples(
    s: Session,
    run_id: int,
    *,
    task: str | None = None,
    search: str | None = None,
    outcome: str = "all",
    score_key: str | None = None,
    threshold: float = 0.5,
    offset: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """One page of a run's samples (dicts of all columns) ordered by task, doc_id.

    ``search``: case-insensitive substring of prompt or output (as ``list_samples``).
    ``outcome``: ``all``; ``errors`` (failed generations); ``at_least`` / ``below``: the
    numeric score ``score_key`` is >= / < ``threshold`` (0/1 scores: right / wrong at 0.5).

    Raises:
        ValueError: ``outcome`` is not one of :data:`OUTCOMES`.
    """
    table = table_of(Sample)
    query = (
        select(table)
        .where(*_filters(s.get_bind().dialect.name, run_id, task, search, outcome, score_key, threshold))
        .order_by(table.c.task, table.c.doc_id, table.c.id)
        .offset(max(offset, 0))
        .limit(max(limit, 0))
    )
    return [dict(row) for row in s.execute(query).mappings()]


def count_filtered_samples(
    s: Session,
    run_id: int,
    *,
    task: str | None = None,
    search: str | None = None,
    outcome: str = "all",
    score_key: str | None = None,
    threshold: float = 0.5,
) -> int:
    """How many samples :func:`filtered_samples` pages through with the same filters."""
    conditions = _filters(s.get_bind().dialect.name, run_id, task, search, outcome, score_key, threshold)
    return int(s.scalar(select(func.count()).select_from(table_of(Sample)).where(*conditions)) or 0)


def paired_samples(
    s: Session, base_id: int, cand_id: int, *, task: str | None = None, limit: int = MAX_PAIRS
) -> list[dict[str, Any]]:
    """The items both runs answered, joined on ``(task, doc_id)``, ordered by task, doc_id.

    Each dict: ``task``, ``doc_id``, ``target`` (the base run's), and per side ``base_``/``cand_``
    ``id``, ``prompt``, ``output``, ``scores``, ``latency_s``, ``error``. A run holding one item
    twice (not written by gemmawatch) yields every combination; callers keep the first.
    """
    base, cand = aliased(Sample), aliased(Sample)
    fields = ("id", "prompt", "output", "scores", "latency_s", "error")
    query = (
        select(
            base.task,
            base.doc_id,
            base.target,
            *(getattr(base, f).label(f"base_{f}") for f in fields),
            *(getattr(cand, f).label(f"cand_{f}") for f in fields),
        )
        .join(cand, and_(cand.task == base.task, cand.doc_id == base.doc_id, cand.run_id == cand_id))
        .where(base.run_id == base_id)
        .order_by(base.task, base.doc_id, base.id, cand.id)
        .limit(max(limit, 0))
    )
    if task is not None:
        query = query.where(base.task == task)
    return [dict(row) for row in s.execute(query).mappings()]
