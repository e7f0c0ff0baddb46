"""Telemetry-window rules and durations, on hand-built readings (no database)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from gemmawatch.alerts import AGGREGATIONS, WindowRule, aggregate, format_duration, parse_duration
from gemmawatch.alerts.window import group_series

POINTS = [(0.0, 3.0), (10.0, 1.0), (20.0, 4.0), (30.0, 1.0), (40.0, 5.0)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("last", 5.0),
        ("avg", 14.0 / 5),
        ("min", 1.0),
        ("max", 5.0),
        ("p95", 4.8),  # linear interpolation between 4 and 5 at rank 3.8
        ("error_ratio", 1.0),  # every reading is non-zero
    ],
)
def test_each_aggregation(name: str, expected: float) -> None:
    assert aggregate(name, POINTS) == pytest.approx(expected)


def test_every_documented_aggregation_is_implemented() -> None:
    assert set(AGGREGATIONS) == {"last", "avg", "min", "max", "p95", "rate", "error_ratio"}
    for name in AGGREGATIONS:
        assert aggregate(name, POINTS) is not None
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate("median", POINTS)


def test_error_ratio_is_the_share_of_errors() -> None:
    assert aggregate("error_ratio", [(0, 0.0), (1, 1.0), (2, 0.0), (3, 0.0)]) == 0.25
    assert aggregate("error_ratio", [(0, 0.0)]) == 0.0


def test_rate_is_per_second_increase_and_survives_counter_resets() -> None:
    assert aggregate("rate", [(0.0, 100.0), (10.0, 150.0), (20.0, 200.0)]) == pytest.approx(5.0)
    # 100 -> 150 (+50), reset to 20 (+20 since the reset), 20 -> 70 (+50): 120 over 30 s
    assert aggregate("rate", [(0.0, 100.0), (10.0, 150.0), (20.0, 20.0), (30.0, 70.0)]) == pytest.approx(4.0)


def test_rate_needs_two_readings_at_different_times() -> None:
    assert aggregate("rate", [(0.0, 1.0)]) is None
    assert aggregate("rate", [(5.0, 1.0), (5.0, 2.0)]) is None


def test_no_readings_or_only_nan_is_no_data() -> None:
    for name in AGGREGATIONS:
        assert aggregate(name, []) is None
        assert aggregate(name, [(0.0, math.nan)]) is None
    assert aggregate("max", [(0.0, math.nan), (1.0, 2.0)]) == 2.0


def rule(**kw: object) -> WindowRule:
    base: dict[str, object] = {
        "name": "w",
        "source": "telemetry",
        "metric": "probe.e2e_s",
        "aggregation": "max",
        "window": "5m",
        "comparator": ">",
        "threshold": 2.0,
    }
    return WindowRule.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("comparator", "value", "breached"),
    [(">", 2.0, False), (">", 2.1, True), (">=", 2.0, True), ("<", 2.0, False), ("<", 1.9, True), ("<=", 2.0, True)],
)
def test_window_comparators(comparator: str, value: float, breached: bool) -> None:
    ev = rule(comparator=comparator).evaluate_points([(0.0, 0.0), (1.0, value)], series="target=a")
    assert ev is not None and ev.breached is breached and ev.value == value
    msg = ev.message()
    assert "\n" not in msg and "max(probe.e2e_s) over 5m" in msg and "target=a" in msg


def test_window_no_data_is_none() -> None:
    assert rule().evaluate_points([]) is None
    assert rule(aggregation="rate").evaluate_points([(0.0, 1.0)]) is None


def test_series_default_to_host_and_target_and_ignore_volatile_labels() -> None:
    rows = [
        {"ts": 2.0, "value": 0.0, "host": "h1", "labels": {"target": "a", "probe": "p", "error_class": "timeout"}},
        {"ts": 1.0, "value": 1.0, "host": "h1", "labels": {"target": "a", "probe": "p"}},
        {"ts": 1.0, "value": 1.0, "host": "h1", "labels": {"target": "b"}},
        {"ts": 1.0, "value": 1.0, "host": "h2", "labels": {"target": "a"}},
        {"ts": 1.0, "value": 7.0, "host": "h1", "labels": {}},
    ]
    groups = group_series(rows, rule().series_by)
    assert set(groups) == {"host=h1,target=a", "host=h1,target=b", "host=h2,target=a", "host=h1"}
    labels, points = groups["host=h1,target=a"]
    assert labels == {"host": "h1", "target": "a"} and points == [(1.0, 1.0), (2.0, 0.0)]  # sorted by time
    by_target = group_series(rows, ("target",))
    assert set(by_target) == {"target=a", "target=b", ""}
    assert set(group_series(rows, ())) == {""}


def test_group_series_reports_the_latest_run() -> None:
    runs: dict[str, int | None] = {}
    rows = [{"ts": 1.0, "value": 1.0, "host": "h", "labels": {}, "run_id": 3},
            {"ts": 2.0, "value": 1.0, "host": "h", "labels": {}, "run_id": 4}]  # fmt: skip
    group_series(rows, ("host",), runs=runs)
    assert runs == {"host=h": 4}


def test_window_rule_fields() -> None:
    r = rule(window="1h30m", labels={"probe": "canary", "port": 8080}, group_by=["target"], **{"for": "2m"})
    assert r.window_s == 5400 and r.for_s == 120 and r.labels == {"probe": "canary", "port": "8080"}
    assert r.series_by == ("target",)
    assert r.condition == "max(probe.e2e_s{probe=canary,port=8080}) over 1h30m > 2 per target"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"metric": "max(probe.up)"}, "aggregation"),
        ({"aggregation": "median"}, "aggregation"),
        ({"window": "0s"}, "window"),
        ({"window": "soon"}, "window"),
        ({"for": "-1m"}, "for"),
        ({"threshold": math.inf}, "threshold"),
        ({"target": "a", "labels": {"target": "a"}}, "target"),
        ({"task": "latency"}, "task"),
    ],
)
def test_invalid_window_rules(bad: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        rule(**bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("250ms", 0.25), ("45", 45), (30, 30)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 minutes", "m5", "-5m", True, None, "0s"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_zero_duration_only_when_allowed_and_formatting() -> None:
    assert parse_duration("0s", allow_zero=True) == 0
    assert [format_duration(s) for s in (0, 0.25, 90, 300, 5400, 86400, 1.5)] == [
        "0s", "250ms", "1m30s", "5m", "1h30m", "1d", "1.5s",
    ]  # fmt: skip
