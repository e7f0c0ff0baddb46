"""What a stakeholder report holds, read from the database through the storage query functions.

:func:`collect_report` gathers, for the chosen runs (in the order given: the first
run's variant is the baseline), each run's provenance, metric rows (value, n, CI),
telemetry summary and a few samples; the paired comparisons
(:func:`gemmawatch.compare.compare_runs`) between runs of the same kind; and the
firing alerts. The result is plain data (picklable, so the dashboard can cache it);
:mod:`~gemmawatch.dashboard.report_summary` decides what it means and
:mod:`~gemmawatch.dashboard.report_html` draws it. No Streamlit here: the CLI uses it.

Secrets never enter a :class:`ReportData`: targets contribute only backend, model id,
revision, dtype and quantization (never their options, where ``api_key_env`` lives),
runs neither their config nor package versions, and alert rules nothing but their
name (never their receiver URLs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sqlalchemy.orm import Session

from gemmawatch import __version__
from gemmawatch.errors import UserError, one_line
from gemmawatch.storage.queries import alerts as alert_queries
from gemmawatch.storage.queries import runs as run_queries
from gemmawatch.storage.queries import samples as sample_queries
from gemmawatch.storage.queries import telemetry as telemetry_queries

__all__ = ["MAX_PAIRED_RUNS", "SAMPLES_SHOWN", "ReportData", "RunSection", "collect_report", "comparison_pairs"]

#: Samples of each run shown in the report (a taste of the outputs, not the whole run).
SAMPLES_SHOWN = 5
#: Characters of a prompt or output kept in the report's sample excerpts.
TEXT_CHARS = 400
#: Up to this many runs of one kind are compared pairwise; beyond it, each only against the first.
MAX_PAIRED_RUNS = 5
#: Newest firing alerts read.
MAX_ALERTS = 200
#: Run fields a report shows (no config, versions or target options: they may name secrets).
RUN_FIELDS = ("id", "kind", "target", "label", "status", "started_at", "finished_at", "error", "host",
              "samples_count", "telemetry_count", "load_requests_count")  # fmt: skip
TARGET_FIELDS = ("backend", "model_id", "revision", "dtype", "quantization")
ALERT_FIELDS = ("id", "rule", "state", "severity", "value", "message", "started_at", "fired_at",
                "acknowledged_at", "silenced_until", "run_id", "target", "metric")  # fmt: skip


@dataclass(frozen=True)
class RunSection:
    """One run of the report: ``run`` (:data:`RUN_FIELDS` plus ``target_info``), its metric rows
    (``run_summary`` metrics: value, stderr, ci_low, ci_high, n, producer ...), telemetry summary
    rows and up to :data:`SAMPLES_SHOWN` samples (texts clipped to :data:`TEXT_CHARS`)."""

    run: dict[str, Any]
    metrics: list[dict[str, Any]]
    telemetry: list[dict[str, Any]]
    samples: list[dict[str, Any]]


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows (see the module docstring)."""

    runs: list[RunSection]
    #: ``Comparison.as_dict()`` per compared pair, or ``{"base": id, "candidate": id, "error": line}``.
    comparisons: list[dict[str, Any]]
    #: Firing alerts on the chosen runs' targets, or on no target; newest first.
    alerts: list[dict[str, Any]]
    #: Firing alerts on other targets (counted, not listed).
    other_alerts: int = 0
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: str = __version__


def comparison_pairs(runs: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """``(base, candidate)`` run ids to compare: runs of the same kind that stored samples, each
    pair in the order chosen (earlier = base); more than :data:`MAX_PAIRED_RUNS` runs of a kind
    are compared only against the first of them."""
    by_kind: dict[str, list[int]] = {}
    for run in runs:
        if run.get("samples_count"):
            by_kind.setdefault(str(run["kind"]), []).append(int(run["id"]))
    pairs: list[tuple[int, int]] = []
    for ids in by_kind.values():
        if len(ids) > MAX_PAIRED_RUNS:
            pairs += [(ids[0], other) for other in ids[1:]]
        else:
            pairs += list(combinations(ids, 2))
    return pairs


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > TEXT_CHARS:
        return value[: TEXT_CHARS - 1] + "…"
    return value


def _run(summary: dict[str, Any]) -> dict[str, Any]:
    run = {key: summary.get(key) for key in RUN_FIELDS}
    info = summary.get("target_info")
    run["target_info"] = None if info is None else {key: info.get(key) for key in TARGET_FIELDS}
    return run


def _samples(s: Session, run_id: int) -> list[dict[str, Any]]:
    rows = sample_queries.list_samples(s, run_id, offset=0, limit=SAMPLES_SHOWN)
    keep = ("task", "doc_id", "prompt", "output", "target", "scores", "latency_s", "error")
    return [{key: _clip(row.get(key)) for key in keep} for row in rows]


def _compare(s: Session, base: int, cand: int) -> dict[str, Any]:
    from gemmawatch.compare import compare_runs

    try:
        return compare_runs(s, base, cand).as_dict()
    except UserError as exc:  # runs that cannot be paired: the report says why
        return {"base": {"id": base}, "candidate": {"id": cand}, "error": one_line(str(exc))}


def collect_report(s: Session, run_ids: Sequence[int]) -> ReportData:
    """Read everything the report of ``run_ids`` shows (duplicates dropped, order kept).

    Raises:
        UserError: No run id given, or a run that does not exist (one line naming it).
    """
    ids = list(dict.fromkeys(int(r) for r in run_ids))
    if not ids:
        raise UserError("No run chosen for the report. Fix: name run ids from `gemmawatch runs list`")
    sections = []
    for run_id in ids:
        summary = run_queries.run_summary(s, run_id)
        if summary is None:
            raise UserError(f"Run {run_id} does not exist. Fix: pick an id from `gemmawatch runs list`")
        sections.append(
            RunSection(
                run=_run(summary),
                metrics=[dict(m) for m in summary.get("metrics") or []],
                telemetry=telemetry_queries.telemetry_summary(s, run_id),
                samples=_samples(s, run_id),
            )
        )
    comparisons = [_compare(s, base, cand) for base, cand in comparison_pairs([r.run for r in sections])]
    targets = {r.run["target"] for r in sections}
    firing = alert_queries.list_alerts(s, state="firing", limit=MAX_ALERTS)
    mine = [a for a in firing if a.get("target") is None or a.get("target") in targets]
    alerts = [{key: a.get(key) for key in ALERT_FIELDS} for a in mine]
    return ReportData(runs=sections, comparisons=comparisons, alerts=alerts, other_alerts=len(firing) - len(mine))
