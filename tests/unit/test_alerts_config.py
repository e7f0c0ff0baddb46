"""Parsing the alerts: section of gemmawatch.yaml."""

from __future__ import annotations

import pytest
import yaml

from gemmawatch.alerts import ThresholdRule, parse_alert_rules
from gemmawatch.errors import ConfigError

GOOD = """
alerts:
  - name: slow-p50
    task: latency
    metric: e2e_s_p50
    comparator: ">"
    threshold: 2.5
  - name: gpu-hot
    metric: max(gpu.temperature_c)
    comparator: ">="
    threshold: 85
    severity: critical
    description: too hot
"""


def test_valid_rules_parse() -> None:
    rules = parse_alert_rules(yaml.safe_load(GOOD)["alerts"])
    assert [r.name for r in rules] == ["slow-p50", "gpu-hot"]
    assert rules[0] == ThresholdRule(name="slow-p50", task="latency", metric="e2e_s_p50", comparator=">", threshold=2.5)
    assert rules[0].severity == "warning"
    assert rules[1].telemetry_ref == ("max", "gpu.temperature_c") and rules[1].threshold == 85.0


def test_none_and_empty_give_no_rules() -> None:
    assert parse_alert_rules(None) == []
    assert parse_alert_rules([]) == []


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"name": "x", "metric": "m", "comparator": "=>", "threshold": 1}, ["'x'", "alerts[0]", "comparator"]),
        ({"name": "x", "metric": "m", "comparator": ">", "threshold": "high"}, ["'x'", "threshold"]),
        ({"name": "x", "metric": "m", "comparator": ">"}, ["'x'", "threshold", "Field required"]),
        ({"name": "x", "metric": "m", "comparator": ">", "threshold": 1, "treshold": 2}, ["treshold"]),
        ({"name": "x", "metric": "m", "comparator": ">", "threshold": 1, "severity": "panic"}, ["severity"]),
        ({"metric": "m", "comparator": ">", "threshold": 1}, ["alerts[0]", "name"]),
        ("just a string", ["alerts[0]", "str", "mapping"]),
    ],
)
def test_errors_are_one_line_naming_rule_and_field(item: object, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_alert_rules([item], source="cfg.yaml")
    msg = str(info.value)
    assert "\n" not in msg and "cfg.yaml" in msg and "Fix" in msg
    for part in expected:
        assert part in msg


def test_duplicate_names_rejected() -> None:
    item = {"name": "x", "metric": "m", "comparator": ">", "threshold": 1}
    with pytest.raises(ConfigError, match=r"Duplicate alert rule 'x' \(alerts\[1\]\)"):
        parse_alert_rules([item, item])


def test_a_mapping_instead_of_a_list_is_rejected() -> None:
    with pytest.raises(ConfigError, match="must be a list"):
        parse_alert_rules({"name": "x"})  # type: ignore[arg-type]


def test_accepts_the_lead_config_models() -> None:
    from gemmawatch.config import parse_config

    cfg = parse_config(GOOD)
    rules = parse_alert_rules(cfg.alerts)
    assert [r.name for r in rules] == ["slow-p50", "gpu-hot"] and rules[1].severity == "critical"


KINDS = """
alerts:
  - name: slow-canary
    source: telemetry
    metric: probe.e2e_s
    labels: {probe: canary}
    aggregation: p95
    window: 5m
    for: 2m
    comparator: ">"
    threshold: 3
    target: "gemma-*"
    notify: ["json://127.0.0.1:8080/hooks"]
  - name: refusals-dropped
    kind: regression
    task: safety_refusal
    metric: refusal_rate
    baseline: label:release-1
    max_drop: 0.05
    severity: critical
notifications:
  critical: ["json://127.0.0.1:9/${TOKEN}"]
  warning: json://127.0.0.1:9/warn
"""


def test_every_rule_kind_parses() -> None:
    from gemmawatch.alerts import RegressionRule, WindowRule
    from gemmawatch.config import parse_config

    cfg = parse_config(KINDS, "g.yaml")
    window, regression = cfg.alerts
    assert isinstance(window, WindowRule) and isinstance(regression, RegressionRule)
    assert (window.aggregation, window.window_s, window.for_s, window.labels) == (
        "p95",
        300.0,
        120.0,
        {"probe": "canary"},
    )
    assert window.target == "gemma-*" and window.notify == ("json://127.0.0.1:8080/hooks",)
    assert (regression.baseline_ref, regression.max_drop, regression.alpha) == (("label", "release-1"), 0.05, 0.05)
    assert cfg.notifications == {"critical": ["json://127.0.0.1:9/${TOKEN}"], "warning": ["json://127.0.0.1:9/warn"]}
    # parsed rules pass through parse_alert_rules unchanged (the pipelines call it on cfg.alerts)
    assert parse_alert_rules(cfg.alerts) == [window, regression]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"kind": "anomaly"}, ["field 'kind'", "Fix: use kind: threshold or kind: regression"]),
        ({"source": "logs"}, ["field 'source'", "Fix: use source: run or source: telemetry"]),
        ({"source": "telemetry", "aggregation": "median"}, ["field 'aggregation'", "Fix: use one of last, avg"]),
        ({"source": "telemetry", "window": "soon"}, ["field 'window'", "Fix: use a duration like"]),
        ({"for": "-2m"}, ["field 'for'", "not a duration", "Fix: use a duration like"]),
        ({"for": -120}, ["field 'for'", "zero or more", "Fix: use a duration like"]),
        ({"notify": ["not-a-url"]}, ["field 'notify'", "SCHEME://", "Fix: write Apprise URLs"]),
        ({"source": "telemetry", "metric": "max(probe.up)"}, ["field 'metric'", "aggregation"]),
        ({"source": "telemetry", "task": "x"}, ["field 'task'", "remove 'task'", "aggregation"]),
        ({"kind": "regression", "task": "t", "max_drop": 0.1, "threshold": None}, ["field 'comparator'", "remove"]),
    ],
)
def test_new_kinds_errors_name_the_rule_field_and_fix(item: dict[str, object], expected: list[str]) -> None:
    base: dict[str, object] = {"name": "x", "metric": "m", "comparator": ">", "threshold": 1}
    raw = {**base, **item}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        parse_alert_rules([raw], source="cfg.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("Invalid alert rule 'x' (alerts[0]) in cfg.yaml") and "Fix:" in msg
    for part in expected:
        assert part in msg, msg


def test_regression_rule_errors() -> None:
    base = {"name": "r", "kind": "regression", "task": "t", "metric": "acc"}
    with pytest.raises(ConfigError, match=r"field 'max_drop': Field required. Fix: add 'max_drop'"):
        parse_alert_rules([base])
    with pytest.raises(ConfigError, match=r"field 'baseline'.*Fix: use previous, run:ID or label:NAME"):
        parse_alert_rules([{**base, "max_drop": 0.1, "baseline": "last week"}])
    with pytest.raises(ConfigError, match=r"field 'alpha'.*Fix: use a significance level"):
        parse_alert_rules([{**base, "max_drop": 0.1, "alpha": 5}])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notifications: [slack://a/b/c]\n", "must map severities to URLs"),
        ("notifications: {panic: [json://h/x]}\n", "notifications.panic in g.yaml is not a severity"),
        ("notifications: {critical: [hooks.example.com]}\n", "notifications.critical[0] in g.yaml"),
        ("notifications: {critical: {url: x}}\n", "must be a list of URLs"),
    ],
)
def test_notification_config_errors(text: str, expected: str) -> None:
    from gemmawatch.config import parse_config

    with pytest.raises(ConfigError) as info:
        parse_config(text, "g.yaml")
    msg = str(info.value)
    assert expected in msg and "\n" not in msg and "Fix:" in msg


def test_bad_notification_urls_are_redacted_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_alert_rules([{"name": "x", "metric": "m", "comparator": ">", "threshold": 1, "notify": ["s3cr3t-token"]}])
    assert "s3cr3t" not in str(info.value)
