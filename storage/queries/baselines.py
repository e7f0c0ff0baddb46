"""What regression alert rules compare: a baseline run, a stored metric, per-sample scores.

Metric names follow the alert engine's convention: ``exact_match`` is the
metric under the ``none`` filter, ``exact_match,strict-match`` the metric
under ``strict-match``.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import case, literal, select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import MetricResult, Run, Sample


def split_metric(metric: str) -> tuple[str, str]:
    """``"exact_match,strict-match"`` -> ``("exact_match", "strict-match")``; a plain name has filter ``none``."""
    name, _, filt = metric.partition(",")
    return name, filt or "none"


def _has_metric(task: str, metric: str) -> Any:
    name, filt = split_metric(metric)
    return (
        select(MetricResult.id)
        .where(
            MetricResult.run_id == Run.id,
            MetricResult.task == task,
            MetricResult.metric == name,
            MetricResult.filter == filt,
        )
        .exists()
    )


def baseline_run(s: Session, run_id: int, *, mode: str, ref: int | str | None, task: str, metric: str) -> int | None:
    """The run to compare ``run_id`` with, or None when there is none.

    Args:
        mode: ``previous`` (the latest earlier completed run of the same target
            and kind that stored ``task``/``metric``), ``run`` (run ``ref``,
            if it exists and is another run) or ``label`` (the latest completed
            run labelled ``ref`` with that metric, of the same target when one
            exists, else of any target).
    """
    current = s.execute(select(Run.target_id, Run.kind, Run.started_at).where(Run.id == run_id)).first()
    if current is None:
        return None
    if mode == "run":
        found = s.scalar(select(Run.id).where(Run.id == ref, Run.id != run_id))
        return None if found is None else int(found)
    query = select(Run.id).where(Run.id != run_id, Run.status == "completed", _has_metric(task, metric))
    if mode == "previous":
        same_target = Run.target_id.is_(None) if current.target_id is None else Run.target_id == current.target_id
        earlier = (Run.started_at < current.started_at) | ((Run.started_at == current.started_at) & (Run.id < run_id))
        query = query.where(same_target, Run.kind == current.kind, earlier).order_by(
            Run.started_at.desc(), Run.id.desc()
        )
    elif mode == "label":
        mine = case((Run.target_id == current.target_id, 0), else_=1) if current.target_id is not None else literal(1)
        query = query.where(Run.label == str(ref)).order_by(mine, Run.started_at.desc(), Run.id.desc())
    else:
        raise ValueError(f"baseline mode must be previous, run or label, got {mode!r}")
    found = s.scalar(query.limit(1))
    return None if found is None else int(found)


def metric_row(s: Session, run_id: int, task: str, metric: str) -> dict[str, Any] | None:
    """The stored metric (keys: value, stderr, ci_low, ci_high, n, higher_is_better), or None."""
    name, filt = split_metric(metric)
    row = (
        s.execute(
            select(
                MetricResult.value,
                MetricResult.stderr,
                MetricResult.ci_low,
                MetricResult.ci_high,
                MetricResult.n,
                MetricResult.higher_is_better,
            ).where(
                MetricResult.run_id == run_id,
                MetricResult.task == task,
                MetricResult.metric == name,
                MetricResult.filter == filt,
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def sample_scores(s: Session, run_id: int, task: str, metric: str) -> dict[int, float]:
    """Per-document score of ``metric`` in a run's samples of ``task``: ``{doc_id: score}``.

    Samples store the first lm-eval filter's scores under the plain metric
    name and the others as ``metric,filter``, so ``metric,filter`` falls back
    to the plain name when only that is stored. Missing or non-finite scores
    are left out.
    """
    name, _ = split_metric(metric)
    rows = s.execute(select(Sample.doc_id, Sample.scores).where(Sample.run_id == run_id, Sample.task == task))
    out: dict[int, float] = {}
    for doc_id, scores in rows:
        scores = scores or {}
        value = scores.get(metric, scores.get(name) if metric != name else None)
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(value):
            out[int(doc_id)] = float(value)
    return out
