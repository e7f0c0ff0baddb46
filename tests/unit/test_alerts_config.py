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
