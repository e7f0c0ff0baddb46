"""The Alerts page in-process (AppTest): states, history, ack/silence, rules round trip, test notification.

Every action is checked in the database afterwards (the page writes through the
same storage functions as ``gemmawatch alerts ...``); no secret of a receiver URL
may reach the page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import SECRET_HOOK, AlertsPopulated, populate_alerts
from notify_receiver import NotifyReceiver
from streamlit.testing.v1 import AppTest

from gemmawatch.alerts.defaults import DEFAULT_RULES
from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.views.alerts import NO_ALERTS, NO_RULES
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import alerts as aq

APP = str(Path(app_module.__file__).resolve())
NEW_RULE = "FormSubmitter:rule_new_form-Create rule"


def _alerts_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/alerts.py").run()
    assert not at.exception, at.exception
    return at


def _click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def _page_text(at: AppTest) -> str:
    """Everything the page shows as text: elements, dataframe cells, chart specs."""
    parts: list[str] = [str(e.value) for kind in ("markdown", "text", "caption", "info", "success", "error")
                        for e in at.get(kind)]  # fmt: skip
    parts += [d.value.to_csv() for d in at.dataframe]
    parts += [el.proto.spec for el in at.get("plotly_chart")]
    parts += [str(w.value) for w in at.text_input] + [str(w.value) for w in at.text_area]
    return "\n".join(parts)


def _stored(url: str, alert_id: int) -> dict[str, Any]:
    with session_scope(get_engine(url)) as s:
        found = aq.get_alert(s, alert_id)
    assert found is not None
    return found


def _rule(url: str, name: str) -> dict[str, Any] | None:
    with session_scope(get_engine(url)) as s:
        return aq.get_rule(s, name)


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return sqlite_url


def test_empty_database_says_what_fills_it_and_seeds_built_in_rules(db: str) -> None:
    at = _alerts_page()
    assert [i.value for i in at.info] == [NO_ALERTS, NO_RULES]
    assert "gemmawatch monitor" in NO_ALERTS and "gemmawatch alerts rules" in NO_RULES
    assert {m.label: m.value for m in at.metric} == {"Firing": "0", "Pending": "0", "Resolved": "0",
                                                       "Rules enabled": "0 of 0"}  # fmt: skip
    _click(at, "rules_seed")
    assert at.success[0].value == f"{len(DEFAULT_RULES)} built-in rules stored."
    rules = next(d.value for d in at.dataframe if "condition" in d.value.columns)
    assert sorted(rules["name"]) == sorted(r.name for r in DEFAULT_RULES) and set(rules["origin"]) == {"default"}


@pytest.fixture
def alerts(db: str) -> AlertsPopulated:
    return populate_alerts(db)


def test_alert_states_history_acknowledge_and_silence(db: str, alerts: AlertsPopulated) -> None:
    at = _alerts_page()
    assert {m.label: m.value for m in at.metric} == {"Firing": "2", "Pending": "1", "Resolved": "1",
                                                       "Rules enabled": "3 of 3"}  # fmt: skip
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[alerts.acked, "acked"] and not pd_isna(table.loc[alerts.acked, "silenced until"])
    assert table.loc[alerts.pending, "state"] == "pending" and table.loc[alerts.resolved, "state"] == "resolved"
    assert "s3cr3t" not in _page_text(at)

    at.radio(key="alerts_state").set_value("resolved").run()
    assert at.dataframe[0].value["id"].tolist() == [alerts.resolved]
    events = next(d.value for d in at.dataframe if "change" in d.value.columns)
    assert events["change"].tolist() == ["new → firing", "firing → resolved"]
    assert events["value"].tolist() == [2.9, 1.2]
    deliveries = next(d.value for d in at.dataframe if "transition" in d.value.columns)
    assert deliveries["url"].tolist() == ["json://127.0.0.1:9/***"] and not deliveries["ok"].any()
    (chart,) = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    assert chart["data"][0]["y"] == [2.9, 1.2]
    assert [s["y0"] for s in chart["layout"]["shapes"]] == [2.5]  # the rule's threshold

    at.radio(key="alerts_state").set_value("firing").run()
    at.selectbox(key="alerts_selected").set_value(alerts.firing).run()
    assert not at.button(key="alert_ack").disabled
    _click(at, "alert_ack")
    assert at.success[0].value == f"Alert {alerts.firing} acknowledged."
    assert _stored(db, alerts.firing)["acknowledged_at"] is not None
    assert at.button(key="alert_ack").disabled  # the page shows the new state at once

    at.selectbox(key="alert_silence_for").set_value("2h").run()
    _click(at, "alert_silence")
    until = _stored(db, alerts.firing)["silenced_until"]
    assert abs(until - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)
    assert at.success[0].value.startswith(f"Alert {alerts.firing} silenced until ")
    events = next(d.value for d in at.dataframe if "change" in d.value.columns)
    assert events["change"].tolist()[-2:] == ["firing → acknowledged", "firing → silenced"]


def test_rule_create_validate_edit_and_disable_round_trip(db: str, alerts: AlertsPopulated) -> None:
    at = _alerts_page()
    # An invalid rule is refused with the validator's one-line message and not stored.
    at.text_input(key="rule_new_name").input("low-acc")
    at.text_input(key="rule_new_metric").input("acc")
    at.text_input(key="rule_new_for").input("soon")
    _click(at, NEW_RULE)
    assert "field 'for'" in at.error[0].value and "Fix: use a duration like 30s" in at.error[0].value
    assert _rule(db, "low-acc") is None

    at.text_input(key="rule_new_name").input("low-acc")
    at.text_input(key="rule_new_metric").input("acc")
    at.text_input(key="rule_new_for").input("0s")
    at.text_input(key="rule_new_task").input("smoke_mc*")
    at.selectbox(key="rule_new_comparator").set_value("<")
    at.number_input(key="rule_new_threshold").set_value(0.4)
    at.text_area(key="rule_new_notify").input(SECRET_HOOK)
    _click(at, NEW_RULE)
    assert at.success[0].value == "Rule low-acc saved."
    stored = _rule(db, "low-acc")
    assert stored is not None and stored["source"] == "user" and stored["enabled"]
    assert (stored["task"], stored["comparator"], stored["threshold"]) == ("smoke_mc*", "<", 0.4)
    assert stored["notify"] == [SECRET_HOOK]
    rules = next(d.value for d in at.dataframe if "condition" in d.value.columns).set_index("name")
    assert rules.loc["low-acc", "condition"] == "smoke_mc*/acc < 0.4"
    assert "s3cr3t" not in _page_text(at)

    # Creating a second rule of that name is refused; editing keeps the stored receiver.
    at.text_input(key="rule_new_name").input("low-acc")
    at.text_input(key="rule_new_metric").input("acc")
    _click(at, NEW_RULE)
    assert "exists already" in at.error[0].value
    at.selectbox(key="rules_selected").set_value("low-acc").run()
    at.number_input(key="rule_edit_low-acc_threshold").set_value(0.3)
    _click(at, "FormSubmitter:rule_edit_low-acc_form-Save rule")
    stored = _rule(db, "low-acc")
    assert stored is not None and stored["threshold"] == 0.3 and stored["notify"] == [SECRET_HOOK]

    _click(at, "rule_toggle")
    assert at.success[0].value == "Rule low-acc disabled."
    assert _rule(db, "low-acc")["enabled"] is False  # type: ignore[index]
    assert at.button(key="rule_toggle").label == "Enable"
    _click(at, "rule_toggle")
    assert _rule(db, "low-acc")["enabled"] is True  # type: ignore[index]


def test_test_notification_delivered_and_not(db: str) -> None:
    at = _alerts_page()
    with NotifyReceiver() as rx:
        at.text_input(key="notify_url").input(f"json://127.0.0.1:{rx.port}/hook-s3cr3t")
        _click(at, "notify_send")
        assert len(rx.posts) == 1 and "test notification" in rx.posts[0].body["title"]
    assert at.success[0].value == f"Delivered to json://127.0.0.1:{rx.port}/*** (attempt 1)."
    at.text_input(key="notify_url").input("not-a-url-s3cr3t")
    _click(at, "notify_send")
    assert at.error[0].value.startswith("Not delivered: ") and "Fix:" in at.error[0].value
    assert "s3cr3t" not in "\n".join(str(e.value) for e in [*at.success, *at.error])


def pd_isna(value: object) -> bool:
    return value is None or value != value  # NaN / NaT
