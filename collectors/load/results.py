"""From raw events to per-step results: window, vLLM summary, telemetry, saturation.

Telemetry rows carry wall-clock times while events carry seconds on the test
clock; ``wall_start`` (the wall time of clock 0) joins the two, so each step's
measurement window selects the host/GPU/engine readings of the same seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.metrics import LoadSummary, Slo, Window, assign_phases, metric_rows, summarize
from gemmawatch.collectors.load.runner import Budget, StepRecord
from gemmawatch.collectors.load.saturation import Knee, StepPoint, find_knee

#: Telemetry averaged over each step's window: (metric, label filter) -> name in the step's telemetry.
_TELEMETRY_MEANS: dict[str, str] = {
    "cpu.percent": "host_cpu_percent",
    "process.cpu_percent": "process_cpu_percent",
    "gpu.utilization": "gpu_utilization_percent",
    "gpu.power_w": "gpu_power_w",
    "vllm:num_requests_waiting": "queue_depth",
    "vllm:num_requests_running": "requests_running",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "llamacpp:requests_deferred": "queue_depth",
    "llamacpp:requests_processing": "requests_running",
    "llamacpp:kv_cache_usage_ratio": "kv_cache_usage",
}


@dataclass
class StepResult:
    """One step's outcome: what ran, its window, the vLLM summary and the stored metric rows."""

    record: StepRecord
    window: Window
    summary: LoadSummary
    rows: list[dict[str, Any]]
    telemetry: dict[str, float] = field(default_factory=dict)

    @property
    def step(self) -> int:
        """Step index."""
        return self.record.step

    def as_dict(self) -> dict[str, Any]:
        """JSON form: the step's profile and every summary figure."""
        p = self.record.profile
        return {
            "step": self.step,
            "profile": p.describe(),
            "kind": p.kind,
            "concurrency": p.workers if not p.open_loop else None,
            "offered_rate": p.rate,
            **self.summary.as_dict(),
            "telemetry": dict(self.telemetry),
        }


def step_filter(record: StepRecord, sweep: bool) -> str:
    """The ``filter`` column of a step's metric rows (``none`` outside sweeps)."""
    return f"step{record.step:02d}" if sweep else "none"


def summarize_steps(
    events: Sequence[RequestEvent],
    records: Sequence[StepRecord],
    budget: Budget,
    *,
    slo: Slo | None,
    sweep: bool,
    wall_start: datetime,
    telemetry: Sequence[Mapping[str, Any]] = (),
) -> list[StepResult]:
    """Assign phases and summarise every step (events are updated in place)."""
    from gemmawatch.collectors.telemetry.energy import energy_per_token

    results = []
    for record in records:
        step_events = [e for e in events if e.step == record.step]
        window = assign_phases(
            step_events, warmup_s=budget.warmup_s, cooldown_s=budget.cooldown_s, start_s=record.started_s
        )
        summary = summarize(step_events, window=window, slo=slo)
        in_window = _rows_in(telemetry, wall_start, window)
        tele = _telemetry_means(in_window)
        energy = energy_per_token(in_window, summary.output_tokens or 0)
        if energy is not None:
            tele["energy_per_output_token_j"] = energy
        details = {
            "step": record.step,
            "profile": record.profile.as_dict(),
            "label": record.profile.describe(),
            "budget": budget.as_dict(),
            "slo": slo.as_dict() if slo is not None else None,
            "filter": step_filter(record, sweep),
        }
        rows = metric_rows(summary, step_events, details=details)
        results.append(StepResult(record, window, summary, rows, tele))
    return results


def _rows_in(rows: Sequence[Mapping[str, Any]], wall_start: datetime, window: Window) -> list[Mapping[str, Any]]:
    lo = wall_start + timedelta(seconds=window.start_s)
    hi = wall_start + timedelta(seconds=window.end_s)
    return [r for r in rows if lo <= r["ts"] <= hi]


def _telemetry_means(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for r in rows:
        name = _TELEMETRY_MEANS.get(str(r["metric"]))
        if name is not None:
            values.setdefault(name, []).append(float(r["value"]))
    return {name: fmean(v) for name, v in values.items() if v}


def saturation(results: Sequence[StepResult]) -> Knee | None:
    """The knee of a sweep's throughput-latency curve (None when not seen or not a sweep)."""
    points = [
        StepPoint(
            step=r.step,
            offered=r.record.profile.rate,
            concurrency=None if r.record.profile.open_loop else r.record.profile.workers,
            request_throughput=r.summary.request_throughput or 0.0,
            output_throughput=r.summary.output_throughput or 0.0,
            ttft_p50_s=r.summary.ttft_p50_s,
            e2e_p50_s=r.summary.e2e_p50_s,
            e2e_p99_s=r.summary.e2e_p99_s,
            queue_depth=r.telemetry.get("queue_depth"),
            telemetry=dict(r.telemetry),
        )
        for r in results
    ]
    knee = find_knee(points)
    if knee is not None:
        # Say what the hardware and the engine were doing just past the knee: the "why" of saturation.
        order = [p.step for p in knee.points]
        after = order[min(order.index(knee.step) + 1, len(order) - 1)]
        tele = next((r.telemetry for r in results if r.step == after), {})
        if tele:
            knee.reason += f" During step {after}: {describe_telemetry(tele)}."
    return knee


_TELEMETRY_TEXT = (
    ("host_cpu_percent", "host CPU {:.0f}%"),
    ("process_cpu_percent", "generator process CPU {:.0f}%"),
    ("gpu_utilization_percent", "GPU {:.0f}% busy"),
    ("gpu_power_w", "GPU power {:.0f} W"),
    ("queue_depth", "{:.1f} requests queued"),
    ("requests_running", "{:.1f} requests running"),
    ("kv_cache_usage", "KV cache {:.0%} full"),
    ("energy_per_output_token_j", "{:.3g} J per output token"),
)


def describe_telemetry(telemetry: Mapping[str, float]) -> str:
    """One phrase per known telemetry mean, e.g. ``host CPU 97%, 3.2 requests queued``."""
    return ", ".join(text.format(telemetry[key]) for key, text in _TELEMETRY_TEXT if key in telemetry)


def headline(results: Sequence[StepResult]) -> StepResult:
    """The step the top-level figures come from: the only one, or a sweep's highest throughput."""
    return max(results, key=lambda r: (r.summary.request_throughput or 0.0, -r.step))
