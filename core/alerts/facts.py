"""What rules are evaluated against: the stored results of one run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TelemetryStat:
    """Aggregate of one telemetry metric over a run (across sources and labels)."""

    n: int
    min: float
    avg: float
    max: float
    unit: str = ""


@dataclass(frozen=True)
class RunFacts:
    """Plain facts about one run, gathered once and shared by every rule.

    Attributes:
        run_id: The run.
        target_id: Its target (alerts are deduplicated per rule and target).
        target: The target's name, for messages.
        metrics: Eval metric values keyed by ``(task, metric)``. A metric with
            a non-default lm-eval filter is keyed ``"metric,filter"`` (for
            example ``"exact_match,strict-match"``), the plain name means the
            ``"none"`` filter. NaN values are left out: they are "no data".
        telemetry: Telemetry aggregates keyed by metric name (``"process.rss_mb"``).
    """

    run_id: int
    target_id: int | None = None
    target: str | None = None
    metrics: Mapping[tuple[str, str], float] = field(default_factory=dict)
    telemetry: Mapping[str, TelemetryStat] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the run stored neither metrics nor telemetry."""
        return not self.metrics and not self.telemetry


def metric_key(metric: str, filter_: str | None) -> str:
    """The :attr:`RunFacts.metrics` name of a metric under an lm-eval filter."""
    return metric if filter_ in (None, "", "none") else f"{metric},{filter_}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def facts_from_rows(
    run_id: int,
    metric_rows: list[dict[str, Any]],
    telemetry_rows: list[dict[str, Any]],
    *,
    target_id: int | None = None,
    target: str | None = None,
) -> RunFacts:
    """Build facts from ``metrics_for_runs`` and ``telemetry_summary`` rows (pure; testable)."""
    metrics: dict[tuple[str, str], float] = {}
    for row in metric_rows:
        if row.get("run_id", run_id) != run_id:
            continue
        value = _finite(row.get("value"))
        if value is not None:
            metrics[(str(row["task"]), metric_key(str(row["metric"]), row.get("filter")))] = value
    telemetry: dict[str, TelemetryStat] = {}
    for row in telemetry_rows:
        lo, avg, hi = (_finite(row.get(k)) for k in ("min", "avg", "max"))
        n = row.get("n")
        if lo is None or avg is None or hi is None or not n:
            continue
        name = str(row["metric"])
        prev = telemetry.get(name)
        if prev is None:
            telemetry[name] = TelemetryStat(int(n), lo, avg, hi, str(row.get("unit") or ""))
        else:  # the same metric from several sources: combine (avg weighted by count)
            total = prev.n + int(n)
            telemetry[name] = TelemetryStat(
                total,
                min(prev.min, lo),
                (prev.avg * prev.n + avg * int(n)) / total,
                max(prev.max, hi),
                prev.unit,
            )
    return RunFacts(run_id=run_id, target_id=target_id, target=target, metrics=metrics, telemetry=telemetry)


def gather_facts(session: Session, run_id: int) -> RunFacts:
    """Read a run's metrics and telemetry summary from the database.

    Raises:
        UnknownNameError: No run has this id.
    """
    from gemmawatch.storage.queries.metrics import metrics_for_runs
    from gemmawatch.storage.queries.runs import run_target
    from gemmawatch.storage.queries.telemetry import telemetry_summary

    target_id, target = run_target(session, run_id)
    return facts_from_rows(
        run_id,
        metrics_for_runs(session, [run_id]),
        telemetry_summary(session, run_id),
        target_id=target_id,
        target=target,
    )
