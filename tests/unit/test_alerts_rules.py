"""ThresholdRule evaluation on hand-built facts (no database)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from gemmawatch.alerts import (
    DEFAULT_RULES,
    AlertRule,
    RunFacts,
    ThresholdRule,
    WindowRule,
    facts_from_rows,
)


def facts(metrics: dict[tuple[str, str], float] | None = None, **telemetry_max: float) -> RunFacts:
    tel = [
        {"source": "psutil", "metric": k.replace("__", "."), "unit": "MB", "n": 3, "min": 1.0, "avg": v / 2, "max": v}
        for k, v in telemetry_max.items()
    ]
    rows = [{"task": t, "metric": m, "filter": "none", "value": v} for (t, m), v in (metrics or {}).items()]
    return facts_from_rows(1, rows, tel)


def rule(
    comparator: str, threshold: float, *, metric: str = "e2e_s_p95", task: str | None = "latency"
) -> ThresholdRule:
    return ThresholdRule.model_validate(
        {"name": "r", "metric": metric, "task": task, "comparator": comparator, "threshold": threshold}
    )


@pytest.mark.parametrize(
    ("comparator", "value", "breached"),
    [
        (">", 10.0, False),  # equal to the threshold: strict comparators do not breach
        (">", 10.0001, True),
        (">=", 10.0, True),
        (">=", 9.999, False),
        ("<", 10.0, False),
        ("<", 9.999, True),
        ("<=", 10.0, True),
        ("<=", 10.001, False),
    ],
)
def test_comparator_edges(comparator: str, value: float, breached: bool) -> None:
    ev = rule(comparator, 10.0).evaluate(facts({("latency", "e2e_s_p95"): value}))
    assert ev is not None
    assert ev.breached is breached
    assert ev.value == value and ev.threshold == 10.0 and ev.comparator == comparator


def test_missing_metric_or_task_is_no_data() -> None:
    r = rule(">", 10.0)
    assert r.evaluate(facts({})) is None
    assert r.evaluate(facts({("other", "e2e_s_p95"): 99.0})) is None
    assert r.evaluate(facts({("latency", "e2e_s_p50"): 99.0})) is None


def test_nan_values_are_no_data_not_a_resolution() -> None:
    assert rule(">", 10.0).evaluate(facts({("latency", "e2e_s_p95"): math.nan})) is None
    assert rule("<", 0.25, metric="acc", task="smoke*").evaluate(facts({("smoke_a", "acc"): math.inf})) is None


def test_task_glob_uses_the_worst_matching_task() -> None:
    r = rule("<", 0.25, metric="acc", task="smoke*")
    f = facts({("smoke_mc_math", "acc"): 0.6, ("smoke_mc_bio", "acc"): 0.2, ("mmlu", "acc"): 0.0})
    ev = r.evaluate(f)
    assert ev is not None and ev.breached and ev.value == 0.2 and ev.subject == "smoke_mc_bio/acc"
    high = rule(">", 1.0, metric="x", task=None)  # no task: any task; ">" takes the largest
    ev2 = high.evaluate(facts({("a", "x"): 0.5, ("b", "x"): 3.0}))
    assert ev2 is not None and ev2.value == 3.0 and ev2.subject == "b/x"


def test_glob_is_case_sensitive() -> None:
    assert rule("<", 0.25, metric="acc", task="smoke*").evaluate(facts({("SMOKE_x", "acc"): 0.1})) is None


def test_filtered_metrics_need_the_filter_in_the_name() -> None:
    rows = [{"task": "smoke_gen", "metric": "exact_match", "filter": "strict-match", "value": 0.1}]
    f = facts_from_rows(1, rows, [])
    assert rule("<", 0.5, metric="exact_match", task="smoke_gen").evaluate(f) is None
    ev = rule("<", 0.5, metric="exact_match,strict-match", task="smoke_gen").evaluate(f)
    assert ev is not None and ev.breached


def test_telemetry_aggregates() -> None:
    f = facts(process__rss_mb=9000.0)
    mx = rule(">", 8192, metric="max(process.rss_mb)", task=None).evaluate(f)
    avg = rule(">", 8192, metric="avg(process.rss_mb)", task=None).evaluate(f)
    assert mx is not None and mx.breached and mx.value == 9000.0 and mx.subject == "max(process.rss_mb)"
    assert avg is not None and not avg.breached and avg.value == 4500.0
    assert rule(">", 1, metric="max(gpu.power_w)", task=None).evaluate(f) is None


def test_telemetry_from_several_sources_is_combined() -> None:
    tel = [
        {"source": "a", "metric": "m", "unit": "W", "n": 1, "min": 1.0, "avg": 1.0, "max": 1.0},
        {"source": "b", "metric": "m", "unit": "W", "n": 3, "min": 5.0, "avg": 5.0, "max": 7.0},
    ]
    stat = facts_from_rows(1, [], tel).telemetry["m"]
    assert (stat.n, stat.min, stat.avg, stat.max) == (4, 1.0, 4.0, 7.0)


def test_metric_rows_of_other_runs_are_ignored() -> None:
    rows = [
        {"run_id": 1, "task": "t", "metric": "m", "filter": "none", "value": 1.0},
        {"run_id": 2, "task": "t", "metric": "m", "filter": "none", "value": 2.0},
    ]
    assert dict(facts_from_rows(1, rows, []).metrics) == {("t", "m"): 1.0}


def test_message_is_one_line_with_value_threshold_and_run() -> None:
    ev = rule(">", 10.0).evaluate(facts({("latency", "e2e_s_p95"): 12.0}))
    assert ev is not None
    msg = ev.message(42)
    assert "\n" not in msg and "12" in msg and "10" in msg and "run 42" in msg and "latency/e2e_s_p95" in msg


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"comparator": "=="}, "comparator"),
        ({"threshold": math.nan}, "threshold"),
        ({"name": "  "}, "name"),
        ({"severity": "fatal"}, "severity"),
        ({"metric": "max(process.rss_mb)", "task": "x"}, "task"),
        ({"metric": "p95(x)", "task": None}, "max"),
    ],
)
def test_invalid_rules_are_rejected(bad: dict[str, object], field: str) -> None:
    base = {"name": "r", "metric": "m", "comparator": ">", "threshold": 1.0}
    with pytest.raises(ValidationError, match=field):
        ThresholdRule.model_validate({**base, **bad})


def test_defaults_match_the_seed_service() -> None:
    by_name = {r.name: r for r in DEFAULT_RULES}
    assert all(isinstance(r, AlertRule) for r in DEFAULT_RULES if isinstance(r, ThresholdRule))
    assert len(by_name) == len(DEFAULT_RULES) == 6
    assert (by_name["max-response-time"].task, by_name["max-response-time"].metric) == ("latency", "e2e_s_p95")
    assert (by_name["max-response-time"].comparator, by_name["max-response-time"].threshold) == (">", 10.0)
    assert (by_name["max-memory"].metric, by_name["max-memory"].threshold) == ("max(process.rss_mb)", 8192.0)
    assert (by_name["min-throughput"].metric, by_name["min-throughput"].comparator) == ("output_tokens_per_s_mean", "<")
    assert by_name["min-throughput"].threshold == 5.0
    assert (by_name["min-success-rate"].metric, by_name["min-success-rate"].threshold) == ("success_rate", 0.95)
    down = by_name["endpoint-down"]
    assert isinstance(down, WindowRule) and down.severity == "critical" and down.series_by == ("target",)
    assert (down.metric, down.aggregation, down.window_s, down.comparator, down.threshold, down.for_s) == (
        "probe.up", "max", 60.0, "<", 1.0, 0.0,
    )  # fmt: skip
    floor = by_name["score-floor"]
    assert (floor.task, floor.metric, floor.comparator, floor.threshold) == ("smoke_mc", "acc", "<", 0.25)
    # chance level itself is not a breach; below it is
    assert not floor.evaluate(facts({("smoke_mc", "acc"): 0.25})).breached  # type: ignore[union-attr]
    assert floor.evaluate(facts({("smoke_mc", "acc"): 0.24})).breached  # type: ignore[union-attr]
    # a single subject is not the pooled score: no data for the floor, no state change
    assert floor.evaluate(facts({("smoke_mc_arithmetic", "acc"): 0.0})) is None
    assert all(isinstance(by_name[n], ThresholdRule) for n in by_name if n != "endpoint-down")
