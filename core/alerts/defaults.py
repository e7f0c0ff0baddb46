"""The built-in rules: the seed monitoring service's limits, plus ``endpoint-down`` for the monitor."""

from __future__ import annotations

from gemmawatch.alerts.rules import ThresholdRule
from gemmawatch.alerts.window import WindowRule

#: Seeded into the database with ``source="default"``; users may disable or
#: override them, and re-seeding keeps their ``enabled`` choice.
DEFAULT_RULES: tuple[ThresholdRule | WindowRule, ...] = (
    ThresholdRule(
        name="max-response-time",
        task="latency",
        metric="e2e_s_p95",
        comparator=">",
        threshold=10.0,
        severity="warning",
        description="p95 end-to-end response time above 10 s (seed: max response time 10 s).",
    ),
    ThresholdRule(
        name="max-memory",
        metric="max(process.rss_mb)",
        comparator=">",
        threshold=8192.0,
        severity="critical",
        description="Peak resident memory of the evaluating process above 8192 MB (seed: max memory 8 GB).",
    ),
    ThresholdRule(
        name="min-throughput",
        task="latency",
        metric="output_tokens_per_s_mean",
        comparator="<",
        threshold=5.0,
        severity="warning",
        description="Mean generation speed below 5 output tokens/s (seed: min throughput 5 tokens/s).",
    ),
    ThresholdRule(
        name="min-success-rate",
        task="latency",
        metric="success_rate",
        comparator="<",
        threshold=0.95,
        severity="critical",
        description="Fewer than 95 % of latency-probe requests succeeded (seed: min success rate 95 %).",
    ),
    ThresholdRule(
        name="score-floor",
        # The pooled multiple-choice score (n=80 on the full suite), not each subject:
        # a 16-item subject at chance is noise, the whole group at chance is a broken model.
        task="smoke_mc",
        metric="acc",
        comparator="<",
        threshold=0.25,
        severity="warning",
        description="Smoke multiple-choice accuracy below chance (0.25 for 4 choices): the model or "
        "the prompt format is broken.",
    ),
    WindowRule(
        name="endpoint-down",
        source="telemetry",
        metric="probe.up",
        aggregation="max",
        window_s=60.0,
        comparator="<",
        threshold=1.0,
        for_s=0.0,
        group_by=("target",),
        severity="critical",
        description="Every canary probe of a target failed for the last minute (gemmawatch monitor's "
        "probe.up stayed 0); one alert per target label.",
    ),
)
