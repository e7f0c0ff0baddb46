"""Unit tests of the Alerts page's tables, rule forms and chart (no Streamlit, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from gemmawatch.alerts.catalog import rule_fields
from gemmawatch.alerts.config import validate_rule
from gemmawatch.dashboard import alert_tables, charts, charts_alerts
from gemmawatch.errors import ConfigError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = "json://127.0.0.1:9/hook-s3cr3t"

FORMS: dict[str, dict[str, Any]] = {
    "Threshold on a run's metric": {"metric": "e2e_s_p95", "task": "latency", "comparator": ">", "threshold": 2.5},
    "Threshold on a telemetry window": {
        "metric": "probe.e2e_s", "comparator": ">=", "threshold": 3.0, "aggregation": "p95", "window": "10m",
        "labels": "probe=canary, region = eu", "group_by": "host, target",
    },  # fmt: skip
    "Regression against a baseline run": {
        "metric": "refusal_rate", "task": "safety", "baseline": "label:release-1", "max_drop": 0.05, "alpha": 0.01,
        "higher_is_better": "higher",
    },  # fmt: skip
}


def _row(rule: Any, **extra: Any) -> dict[str, Any]:
    # What the database gives back for a saved rule (upsert_rule's columns).
    fields = rule_fields(rule)
    row = {"id": 1, "source": "user", "kind": "threshold", "data_source": "run", "task": None, "labels": {},
           "group_by": None, "aggregation": None, "window_s": None, "baseline": None, "alpha": None,
           "higher_is_better": None, **fields, **extra}  # fmt: skip
    return row


@pytest.mark.parametrize("kind", list(FORMS))
def test_each_rule_kind_form_validates_and_round_trips(kind: str) -> None:
    form = {"kind": kind, "name": " my-rule ", "severity": "critical", "for": "2m", "notify": SECRET, **FORMS[kind]}
    rule = validate_rule(alert_tables.rule_raw(form))
    assert rule.name == "my-rule" and rule.severity == "critical" and rule.for_s == 120 and rule.notify == (SECRET,)
    values = alert_tables.form_values(_row(rule))
    assert values["kind"] == kind and values["notify"] == ""  # stored URLs never go back into the form
    again = validate_rule(alert_tables.rule_raw(values, stored_notify=[SECRET]))
    assert again == rule  # the form of a stored rule saves the same rule


def test_telemetry_and_regression_fields() -> None:
    window = validate_rule(alert_tables.rule_raw({"kind": "Threshold on a telemetry window", "name": "w",
                                                  **FORMS["Threshold on a telemetry window"]}))  # fmt: skip
    assert window.labels == {"probe": "canary", "region": "eu"} and window.group_by == ("host", "target")
    assert window.window_s == 600 and window.aggregation == "p95"
    raw = alert_tables.rule_raw({"kind": "Regression against a baseline run", "name": "r",
                                 **FORMS["Regression against a baseline run"], "higher_is_better":
                                 "from the stored metric"})  # fmt: skip
    assert "higher_is_better" not in raw and raw["max_drop"] == 0.05


def test_blank_notify_keeps_or_clears_stored_receivers() -> None:
    base = {"kind": "Threshold on a run's metric", "name": "r", **FORMS["Threshold on a run's metric"]}
    assert alert_tables.rule_raw(base, stored_notify=[SECRET])["notify"] == [SECRET]
    assert alert_tables.rule_raw({**base, "clear_notify": True}, stored_notify=[SECRET])["notify"] == []
    replaced = alert_tables.rule_raw({**base, "notify": "json://a.example.com/x\njson://b.example.com/y"},
                                     stored_notify=[SECRET])  # fmt: skip
    assert replaced["notify"] == ["json://a.example.com/x", "json://b.example.com/y"]


def test_invalid_form_values_fail_with_one_line_fix() -> None:
    with pytest.raises(ConfigError, match=r"Labels: 'canary' is not name=value\. Fix:"):
        alert_tables.parse_labels("probe=x, canary")
    raw = alert_tables.rule_raw({"kind": "Threshold on a run's metric", "name": "r", "metric": "acc",
                                 "comparator": "<", "threshold": 0.5, "for": "soon"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"field 'for'.*Fix: use a duration"):
        validate_rule(raw, source="the dashboard form")


def test_rules_frame_redacts_receivers_and_flags_invalid_rows() -> None:
    rule = validate_rule(alert_tables.rule_raw({"kind": "Threshold on a run's metric", "name": "slow", "notify":
                                                SECRET, **FORMS["Threshold on a run's metric"]}))  # fmt: skip
    broken = {**_row(rule), "name": "broken", "comparator": "!=", "notify": []}
    frame = alert_tables.rules_frame([_row(rule), broken]).set_index("name")
    assert frame.loc["slow", "notify"] == "json://127.0.0.1:9/***"
    assert frame.loc["slow", "condition"] == "latency/e2e_s_p95 > 2.5" and frame.loc["slow", "for"] == "0s"
    assert frame.loc["broken", "condition"].startswith("invalid: ")
    assert "s3cr3t" not in frame.to_csv()


def test_alerts_frame_shows_running_silences_only() -> None:
    rows = [
        {"id": 1, "state": "firing", "rule": "r", "target": None, "series": "host=h1", "value": 2.0,
         "started_at": NOW - timedelta(hours=1), "fired_at": NOW, "acknowledged_at": NOW,
         "silenced_until": NOW + timedelta(hours=1), "message": "m"},
        {"id": 2, "state": "resolved", "rule": "r", "target": "t", "series": "target=t", "value": None,
         "started_at": NOW - timedelta(hours=2), "fired_at": None, "acknowledged_at": None,
         "silenced_until": NOW - timedelta(minutes=1), "message": "m"},
    ]  # fmt: skip
    frame = alert_tables.alerts_frame(rows, now=NOW).set_index("id")
    assert frame.loc[1, "target"] == "host=h1" and frame.loc[1, "acked"] and frame.loc[1, "since"] == NOW
    assert frame.loc[1, "silenced until"] == NOW + timedelta(hours=1) and pd.isna(frame.loc[2, "silenced until"])
    assert frame.loc[2, "since"] == NOW - timedelta(hours=2) and pd.isna(frame.loc[2, "value"])
    assert alert_tables.alerts_frame([], now=NOW).columns.tolist() == alert_tables.ALERT_COLUMNS


def test_alert_history_chart() -> None:
    events = alert_tables.events_frame(
        [
            {"at": NOW, "from_state": None, "to_state": "pending", "value": 2.6, "message": "m"},
            {"at": NOW + timedelta(minutes=1), "from_state": "pending", "to_state": "firing", "value": 3.1,
             "message": "m"},  # fmt: skip
            {"at": NOW + timedelta(minutes=2), "from_state": "firing", "to_state": "acknowledged", "value": None,
             "message": "acknowledged"},  # fmt: skip
        ]
    )
    assert events["change"].tolist() == ["new → pending", "pending → firing", "firing → acknowledged"]
    fig = charts_alerts.alert_history(events, threshold=2.5, comparator=">")
    (trace,) = fig.data
    assert list(trace.y) == [2.6, 3.1]
    assert list(trace.marker.color) == [charts_alerts.STATE_COLOURS["pending"], charts_alerts.STATE_COLOURS["firing"]]
    assert [s.y0 for s in fig.layout.shapes] == [2.5]
    assert charts.NO_DATA in [a.text for a in charts_alerts.alert_history(events.iloc[0:0]).layout.annotations]
