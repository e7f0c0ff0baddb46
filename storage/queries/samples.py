"""Per-document samples of runs: storing them, paging through them, and rating them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from gemmawatch.errors import UnknownNameError, UserError
from gemmawatch.storage.models import Sample
from gemmawatch.storage.queries._rows import bulk_insert, prepare_rows, table_of

if TYPE_CHECKING:
    from gemmawatch.evals.safety.storage_policy import TextPolicy

_DEFAULTS: dict[str, Callable[[], Any]] = {"output": lambda: "", "scores": dict}
#: Score key of the mean user satisfaction rating (1-5) of a sample.
USER_RATING = "user_rating"
#: Score key of the list of individual ratings: ``[{"rating", "comment", "at"}, ...]``, oldest first.
USER_RATINGS = "user_ratings"
#: Longest comment kept with a rating.
MAX_COMMENT_CHARS = 2000
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
        .where(*search_conditions(run_id, task, search))
        .order_by(table.c.task, table.c.doc_id, table.c.id)
        .offset(max(offset, 0))
        .limit(max(limit, 0))
    )
    return [dict(row) for row in s.execute(query).mappings()]


def count_samples(s: Session, run_id: int, task: str | None = None, search: str | None = None) -> int:
    """How many samples :func:`list_samples` would page through."""
    query = select(func.count()).select_from(table_of(Sample)).where(*search_conditions(run_id, task, search))
    return int(s.scalar(query) or 0)


def tasks_for_run(s: Session, run_id: int) -> list[str]:
    """The distinct task names of a run's samples, sorted."""
    query = select(Sample.task).where(Sample.run_id == run_id).distinct().order_by(Sample.task)
    return list(s.scalars(query))


def rate_sample(s: Session, sample_id: int, rating: int, comment: str | None = None) -> dict[str, Any]:
    """Record a user satisfaction rating (1-5, optional comment) on a sample; returns its new ``scores``.

    Ratings are appended, never replaced: ``scores["user_ratings"]`` keeps every rating
    with its comment and UTC time (ISO 8601), and ``scores["user_rating"]`` is their
    mean, shown beside the sample's other scores (``gemmawatch compare`` leaves ratings
    out: they are sparse feedback, not a measurement of every item). No schema change is
    involved: both live in the sample's JSON ``scores``.

    Raises:
        UserError: ``rating`` is not a whole number from 1 to 5, or ``comment`` is not
            text of at most 2,000 characters.
        UnknownNameError: No sample has id ``sample_id``.
    """
    if isinstance(rating, bool) or not isinstance(rating, int | float) or rating not in (1, 2, 3, 4, 5):
        raise UserError(f"A rating must be a whole number from 1 to 5, got {rating!r}")
    if comment is not None:
        if not isinstance(comment, str):
            raise UserError(f"A rating comment must be text, got {type(comment).__name__}")
        comment = comment.strip() or None
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise UserError(f"A rating comment is limited to {MAX_COMMENT_CHARS} characters, got {len(comment)}")
    # FOR UPDATE on PostgreSQL: two ratings of one sample at once must both be kept (SQLite locks the file anyway).
    sample = s.get(Sample, sample_id, with_for_update=True)
    if sample is None:
        raise UnknownNameError(f"Unknown sample id {sample_id}. Fix: pick a sample of an existing run")
    scores = dict(sample.scores or {})
    previous = scores.get(USER_RATINGS)
    entries = [e for e in previous if isinstance(e, dict)] if isinstance(previous, list) else []
    entries.append({"rating": int(rating), "comment": comment, "at": datetime.now(UTC).isoformat()})
    values = [float(e["rating"]) for e in entries if isinstance(e.get("rating"), int | float)]
    scores[USER_RATINGS] = entries
    scores[USER_RATING] = math.fsum(values) / len(values)
    sample.scores = scores  # a new dict, so the JSON column is seen as changed
    s.flush()
    return scores


def search_conditions(run_id: int, task: str | None, search: str | None) -> list[ColumnElement[bool]]:
    """WHERE conditions for a run's samples, optionally of one task and containing ``search`` in prompt or output."""
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
