"""Helpers for the alert engine tests: recording and failing notifiers, telemetry and run builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from gemmawatch.alerts.notify import Delivery, redact_url
from gemmawatch.storage.engine import session_scope
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import samples as sq
from gemmawatch.storage.queries import targets as tq
from gemmawatch.storage.queries import telemetry as teq

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Call:
    urls: list[str]
    title: str
    body: str
    severity: str


@dataclass
class FakeNotifier:
    """Records every notify() call; every URL is delivered (or fails, with ``ok=False``)."""

    ok: bool = True
    calls: list[Call] = field(default_factory=list)

    def notify(self, urls: Sequence[str], *, title: str, body: str, severity: str) -> list[Delivery]:
        self.calls.append(Call(list(urls), title, body, severity))
        error = None if self.ok else "receiver said no. Fix: check it"
        now = datetime.now(UTC)
        return [
            Delivery(url=redact_url(u), ok=self.ok, attempts=1 if self.ok else 3, error=error, at=now) for u in urls
        ]

    @property
    def titles(self) -> list[str]:
        return [c.title for c in self.calls]


class RaisingNotifier:
    """Breaks the Notifier contract by raising: the engine must survive it."""

    def __init__(self) -> None:
        self.calls = 0

    def notify(self, urls: Sequence[str], *, title: str, body: str, severity: str) -> list[Delivery]:
        self.calls += 1
        raise RuntimeError(f"boom while sending to {urls[0]}")


def probe_rows(
    values: Sequence[float],
    *,
    start: datetime = T0,
    step_s: float = 10.0,
    metric: str = "probe.up",
    target: str = "gemma-prod",
    host: str = "h1",
    extra: Mapping[str, str] | None = None,
    run_id: int | None = None,
) -> list[dict[str, Any]]:
    """Telemetry rows as the monitor stores them (labels target/probe; error_class when value is 0)."""
    rows = []
    for i, v in enumerate(values):
        labels: dict[str, Any] = {"target": target, "probe": "canary", **(extra or {})}
        if metric == "probe.up" and v == 0:
            labels["error_class"] = "connect"
        rows.append(
            {
                "run_id": run_id,
                "host": host,
                "source": "probe",
                "metric": metric,
                "unit": "",
                "value": float(v),
                "ts": start + timedelta(seconds=i * step_s),
                "interval_s": step_s,
                "labels": labels,
            }
        )
    return rows


def add_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with session_scope(engine) as s:
        teq.add_telemetry(s, rows)


def make_run(
    engine: Engine,
    *,
    target: str = "gemma-test",
    kind: str = "eval",
    label: str | None = None,
    status: str = "completed",
    metrics: Mapping[tuple[str, str], float] | None = None,
    ci: Mapping[tuple[str, str], tuple[float, float]] | None = None,
    scores: Mapping[str, Sequence[float]] | None = None,
    higher_is_better: bool | None = True,
) -> int:
    """A finished run with metric rows and, per ``task/metric`` key of ``scores``, one sample per score."""
    with session_scope(engine) as s:
        tid = tq.upsert_target(s, name=target, backend="transformers", model_id="bundled:test")
        run_id = rq.create_run(s, kind=kind, target_id=tid, config={}, host="h", versions={}, label=label)
        rows = []
        for (task, metric), value in (metrics or {}).items():
            lo, hi = (ci or {}).get((task, metric), (None, None))
            rows.append(
                {"task": task, "metric": metric, "value": value, "n": 10, "producer": "test", "producer_version": "0",
                 "ci_low": lo, "ci_high": hi, "higher_is_better": higher_is_better}
            )  # fmt: skip
        if rows:
            mq.add_metrics(s, run_id, rows)
        samples = []
        for key, values in (scores or {}).items():
            task, _, metric = key.partition("/")
            for doc_id, v in enumerate(values):
                samples.append({"task": task, "doc_id": doc_id, "prompt": "q", "output": "a", "scores": {metric: v}})
        if samples:
            sq.add_samples(s, run_id, samples)
        rq.finish_run(s, run_id, status=status)
    return run_id
