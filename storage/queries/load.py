"""Load tests: the raw request timings of a run and its per-step summary metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session

from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.storage.models import LoadRequest, MetricResult, Run, Target
from gemmawatch.storage.queries._rows import bulk_insert, table_of

#: Task name of the summary metrics a load test stores in the ``metrics`` table.
LOAD_TASK = "load"

#: RequestEvent fields in the order :func:`load_requests` selects them.
_FIELDS = (
    "seq",
    "step",
    "sent_s",
    "scheduled_s",
    "first_chunk_s",
    "chunk_s",
    "n_chunks",
    "end_s",
    "input_tokens",
    "output_tokens",
    "token_source",
    "status",
    "error",
    "error_class",
    "phase",
)


def add_load_requests(s: Session, run_id: int, events: Iterable[RequestEvent]) -> int:
    """Store one ``load_requests`` row per event of ``run_id``; returns how many.

    One executemany for all rows (a long load test has hundreds of thousands).
    Optional times that are NaN or infinite are stored as NULL, like every other
    nullable float column; a non-finite ``sent_s`` or chunk time raises
    ``ValueError`` naming the request, since it cannot be stored faithfully.
    """
    # Core executemany, not the ORM's insert(LoadRequest): the ORM bulk path
    # re-collects every row and costs about a third more on 100k requests.
    return bulk_insert(s, LoadRequest, [_row(run_id, event) for event in events])


def load_requests(s: Session, run_id: int, step: int | None = None) -> list[RequestEvent]:
    """A run's requests as :class:`RequestEvent` objects, ordered by step then seq.

    ``step`` restricts them to one step of a sweep. Every field comes back as it
    was stored by :func:`add_load_requests`.
    """
    table = table_of(LoadRequest)
    query = (
        select(*(table.c[name] for name in _FIELDS))
        .where(table.c.run_id == run_id)
        .order_by(table.c.step, table.c.seq, table.c.id)
    )
    if step is not None:
        query = query.where(table.c.step == step)
    events = []
    for row in s.execute(query).tuples():
        events.append(RequestEvent(**dict(zip(_FIELDS, row, strict=True))))
    return events


def load_steps(s: Session, run_id: int) -> list[dict[str, Any]]:
    """The summary metrics of a run's load test, one dict per step (throughput-latency curves).

    Built from the run's ``metrics`` rows with task ``"load"``, grouped by their
    ``filter`` (``"step00"``, ``"step01"``... in a sweep). Each dict has
    ``step`` (``details["step"]``, 0 when absent), ``filter``, ``details`` (of
    the step's first stored row) and ``metrics``: ``{metric name: {"value",
    "ci_low", "ci_high", "n"}}``. Ordered by step, then filter.
    """
    m = table_of(MetricResult)
    query = (
        select(m.c.filter, m.c.metric, m.c.value, m.c.ci_low, m.c.ci_high, m.c.n, m.c.details)
        .where(m.c.run_id == run_id, m.c.task == LOAD_TASK)
        .order_by(m.c.id)
    )
    steps: dict[str, dict[str, Any]] = {}
    for row in s.execute(query):
        step = steps.get(row.filter)
        if step is None:
            details = dict(row.details or {})
            step = {"step": int(details.get("step", 0)), "filter": row.filter, "details": details, "metrics": {}}
            steps[row.filter] = step
        step["metrics"][row.metric] = {"value": row.value, "ci_low": row.ci_low, "ci_high": row.ci_high, "n": row.n}
    return sorted(steps.values(), key=lambda item: (item["step"], item["filter"]))


#: Most rows :func:`request_timings` returns unless told otherwise (a browser draws ~1e4 points per series well).
TIMINGS_LIMIT = 20_000


def request_timings(s: Session, run_id: int, *, limit: int = TIMINGS_LIMIT) -> list[dict[str, Any]]:
    """Per-request latencies of one run for distribution plots, computed by the database.

    One dict per request, ordered by step then seq, with ``step``, ``seq``,
    ``phase``, ``ok`` (completed without error), ``ttft_s`` (first chunk -
    send), ``e2e_s`` (end - send), ``tpot_s`` (vLLM: ``(e2e - ttft) /
    (output_tokens - 1)``, None below two output tokens), ``output_tokens`` and
    ``error_class``; the same values as the ``RequestEvent`` properties.

    A run with more than ``limit`` requests is thinned evenly inside the
    database: only every k-th request of each step is read (``seq % k == 0``,
    k = ceil(count / limit)), so a run of a million requests costs one index
    scan and ``limit`` rows, not a million objects. Thinning can return up to
    one row per step more than ``limit``.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    t = table_of(LoadRequest)
    count = int(s.scalar(select(func.count()).select_from(t).where(t.c.run_id == run_id)) or 0)
    if count == 0:
        return []
    ttft = t.c.first_chunk_s - t.c.sent_s
    e2e = t.c.end_s - t.c.sent_s
    # Written as the property computes it ((e2e - ttft) / (out - 1)), so both round alike.
    tpot = case(
        (t.c.output_tokens >= 2, (e2e - ttft) / cast(t.c.output_tokens - 1, Float)),
        else_=None,
    )
    ok = case((t.c.error.is_(None) & t.c.end_s.is_not(None), True), else_=False)
    query = (
        select(
            t.c.step,
            t.c.seq,
            t.c.phase,
            ok.label("ok"),
            ttft.label("ttft_s"),
            e2e.label("e2e_s"),
            tpot.label("tpot_s"),
            t.c.output_tokens,
            t.c.error_class,
        )
        .where(t.c.run_id == run_id)
        .order_by(t.c.step, t.c.seq, t.c.id)
    )
    stride = -(-count // limit)  # ceil division
    if stride > 1:
        query = query.where(t.c.seq % stride == 0)
    # SQLite answers the CASE with 1/0, PostgreSQL with a boolean.
    return [{**row, "ok": bool(row["ok"])} for row in (dict(r) for r in s.execute(query).mappings())]


def load_runs(s: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Load-test runs (``kind == "load"``), newest first, for run pickers.

    Keys: id, target (name, None without a target), label, status,
    started_at, finished_at, profile (the short label the CLI prints, e.g.
    ``sweep@5`` or ``concurrent@8``; None when the run stored no profile).
    """
    from gemmawatch.collectors.load.profiles import Profile

    query = (
        select(
            Run.id,
            Target.name.label("target"),
            Run.label,
            Run.status,
            Run.started_at,
            Run.finished_at,
            # Only the profile entry of the config: a sweep's config also holds every step's figures.
            Run.config["profile"].label("profile"),
        )
        .outerjoin(Target, Run.target_id == Target.id)
        .where(Run.kind == "load")
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(limit)
    )
    rows = []
    for row in s.execute(query).mappings():
        out = dict(row)
        out["profile"] = _profile_label(out["profile"], Profile)
        rows.append(out)
    return rows


def _profile_label(stored: Any, profile_cls: Any) -> str | None:
    if not isinstance(stored, dict) or not stored.get("kind"):
        return None
    fields = ("kind", "concurrency", "rate", "burstiness", "steps", "max_inflight")
    try:
        label: str = profile_cls(**{k: stored[k] for k in fields if stored.get(k) is not None}).describe()
    except (TypeError, ValueError):  # a config written by another version: its kind still says enough
        return str(stored["kind"])
    return label


def _row(run_id: int, e: RequestEvent) -> dict[str, Any]:
    if not math.isfinite(e.sent_s):
        raise ValueError(f"load request step {e.step} seq {e.seq}: sent_s is {e.sent_s}, a finite number is required")
    # One C-level sum instead of a Python loop: any NaN or infinity makes it non-finite.
    if e.chunk_s and not math.isfinite(sum(e.chunk_s)):
        raise ValueError(f"load request step {e.step} seq {e.seq}: chunk_s holds a non-finite time")
    return {
        "run_id": run_id,
        "step": e.step,
        "seq": e.seq,
        "phase": e.phase,
        "scheduled_s": _finite_or_none(e.scheduled_s),
        "sent_s": e.sent_s,
        "first_chunk_s": _finite_or_none(e.first_chunk_s),
        "end_s": _finite_or_none(e.end_s),
        "n_chunks": e.n_chunks,
        "chunk_s": list(e.chunk_s),
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "token_source": e.token_source,
        "status": e.status,
        "error": e.error,
        "error_class": e.error_class,
    }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None
