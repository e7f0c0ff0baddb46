"""Alerts page: alerts with their state and history, acknowledge and silence; the rules (create,
edit, enable/disable); a test notification to a receiver.

Every action does what the matching ``gemmawatch alerts ...`` command does, through
:mod:`gemmawatch.dashboard.alert_data`. Receiver URLs may hold tokens: stored ones are
shown redacted and never put back into a form; the test URL field is a password field.
Alert messages and rule texts reach the page as dataframe cells or plain text only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from gemmawatch.alerts.notify import redact_url
from gemmawatch.alerts.rules import COMPARE
from gemmawatch.alerts.window import AGGREGATIONS
from gemmawatch.dashboard import alert_data, alert_tables, charts_alerts, ui
from gemmawatch.errors import GemmawatchError, one_line

__all__ = ["NO_ALERTS", "NO_RULES", "render"]

NO_ALERTS = (
    "No alerts yet. Rules are evaluated after every run (`gemmawatch eval`, `gemmawatch safety`, "
    "`gemmawatch bench load`) and on every tick of `gemmawatch monitor`; an alert appears here when one breaches."
)
NO_RULES = (
    "No alert rules stored yet. `gemmawatch alerts rules` stores the built-in rules and those of "
    "gemmawatch.yaml (any run does too); or store the built-in ones with the button below, or add one."
)
STATES = ("firing", "pending", "resolved")
SILENCE_CHOICES = ("30m", "1h", "2h", "8h", "1d", "7d")
_FLASH = "alerts_flash"
_ALL = "(all)"


def render() -> None:
    """Draw the Alerts page."""
    st.title("Alerts")
    ui.database_caption()
    _flash()
    alerts = alert_tables.alerts_frame(alert_data.alert_list(), now=datetime.now(UTC))
    rules = alert_data.rules()
    counts = alerts["state"].value_counts() if not alerts.empty else pd.Series(dtype=int)
    cols = st.columns(4)
    for col, state in zip(cols, STATES, strict=False):
        col.metric(state.capitalize(), int(counts.get(state, 0)))
    cols[3].metric("Rules enabled", f"{sum(bool(r.get('enabled')) for r in rules)} of {len(rules)}")
    _alerts_section(alerts, rules)
    _rules_section(rules)
    _test_section()


# --- feedback of the last action ------------------------------------------------------------------


def _flash() -> None:
    kind, text = st.session_state.pop(_FLASH, (None, None))
    if kind == "success":
        st.success(text)
    elif kind == "error":
        st.error(text)


def _act(
    success: Callable[[Any], str], fn: Callable[..., Any], *args: Any, clear: str | None = None, **kwargs: Any
) -> None:
    """Run a write; remember its outcome for the next run (shown on top) and rerun with fresh data.

    On success, widgets whose keys start with ``clear`` start afresh (a saved form does not keep
    the receiver URLs typed into it: they may hold tokens).
    """
    try:
        result = fn(*args, **kwargs)
    except GemmawatchError as exc:
        st.session_state[_FLASH] = ("error", one_line(str(exc)))
    else:
        st.session_state[_FLASH] = ("success", success(result))
        for key in [k for k in st.session_state if clear and str(k).startswith(clear)]:
            del st.session_state[key]
    st.rerun()


# --- alerts ---------------------------------------------------------------------------------------


def _alerts_section(alerts: pd.DataFrame, rules: list[dict[str, Any]]) -> None:
    st.subheader("Alerts")
    if alerts.empty:
        st.info(NO_ALERTS)
        return
    state = st.radio("State", [_ALL, *STATES], horizontal=True, key="alerts_state")
    shown = alerts if state == _ALL else alerts[alerts["state"] == state]
    if shown.empty:
        st.info(f"No {state} alerts.")
        return
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "id": st.column_config.NumberColumn("id", format="%d", width="small"),
            "value": st.column_config.NumberColumn("value", format="%.4g"),
            "since": st.column_config.DatetimeColumn("since (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "silenced until": st.column_config.DatetimeColumn("silenced until (UTC)", format="YYYY-MM-DD HH:mm"),
            "message": st.column_config.TextColumn("message", width="large"),
        },
    )
    ui.export_buttons(shown, "alerts")
    labels = {int(r["id"]): f"#{r['id']} {r['rule']} · {r['target']} · {r['state']}" for r in shown.to_dict("records")}
    alert_id = int(st.selectbox("Alert", list(labels), format_func=lambda i: labels[i], key="alerts_selected"))
    row = shown[shown["id"] == alert_id].iloc[0]
    _alert_detail(row, {r["name"]: r for r in rules})


def _alert_detail(row: pd.Series, rules: dict[str, dict[str, Any]]) -> None:
    alert_id = int(row["id"])
    st.markdown(f"**History of alert #{alert_id}**")
    events = alert_tables.events_frame(alert_data.alert_events(alert_id))
    rule = rules.get(str(row["rule"])) or {}
    threshold = rule.get("threshold") if rule.get("kind") == "threshold" else None
    st.plotly_chart(
        charts_alerts.alert_history(events, threshold=threshold, comparator=rule.get("comparator")),
        key="alert_history_chart",
    )
    st.dataframe(
        events.drop(columns=["state"]),
        hide_index=True,
        column_config={
            "at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "value": st.column_config.NumberColumn("value", format="%.4g"),
            "message": st.column_config.TextColumn("message", width="large"),
        },
    )
    deliveries = alert_tables.notifications_frame(alert_data.notifications(alert_id))
    if deliveries.empty:
        st.caption("No notification was sent for this alert.")
    else:
        st.caption("Notifications sent for this alert (receiver URLs redacted):")
        st.dataframe(deliveries, hide_index=True)

    left, mid, right = st.columns([1, 1, 1], vertical_alignment="bottom")
    acked = bool(row["acked"])
    if left.button(
        "Acknowledged" if acked else "Acknowledge",
        disabled=acked,
        key="alert_ack",
        help="No more firing notifications for this alert (its resolution is still sent).",
    ):
        _act(lambda first: f"Alert {alert_id} acknowledged.", alert_data.acknowledge, alert_id)
    duration = mid.selectbox("Silence for", SILENCE_CHOICES, index=1, key="alert_silence_for")
    if right.button("Silence", key="alert_silence", help="No notifications until then, also if it fires again."):
        _act(
            lambda until: f"Alert {alert_id} silenced until {until:%Y-%m-%d %H:%M:%S} UTC.",
            alert_data.silence,
            alert_id,
            duration,
        )


# --- rules ----------------------------------------------------------------------------------------


def _rules_section(rules: list[dict[str, Any]]) -> None:
    st.subheader("Rules")
    if not rules:
        st.info(NO_RULES)
        if st.button("Store the built-in rules", key="rules_seed"):
            _act(lambda count: f"{count} built-in rules stored.", alert_data.seed_rules)
    else:
        st.dataframe(
            alert_tables.rules_frame(rules),
            hide_index=True,
            column_config={"condition": st.column_config.TextColumn("condition", width="large")},
        )
        st.caption(
            "origin: default (built in), config (gemmawatch.yaml: re-applied by every run, so edit the file) or "
            "user (this page). Editing a default rule makes it a user rule that re-seeding leaves alone."
        )
        by_name = {r["name"]: r for r in rules}
        cols = st.columns([3, 1], vertical_alignment="bottom")
        name = str(cols[0].selectbox("Rule", list(by_name), key="rules_selected"))
        chosen = by_name[name]
        enabled = bool(chosen.get("enabled"))
        if cols[1].button("Disable" if enabled else "Enable", key="rule_toggle"):
            done = "disabled" if enabled else "enabled"
            _act(lambda _: f"Rule {name} {done}.", alert_data.set_rule_enabled, name, not enabled)
        with st.expander(f"Edit rule {name}"):
            _rule_form(alert_tables.form_values(chosen), stored_notify=list(chosen.get("notify") or []), new=False)
    with st.expander("New rule"):
        _rule_form(None, stored_notify=[], new=True)


def _rule_form(values: dict[str, Any] | None, *, stored_notify: list[str], new: bool) -> None:
    v = values or {}
    prefix = "rule_new" if new else f"rule_edit_{v['name']}"
    kinds = list(alert_tables.RULE_KINDS)
    kind = st.radio("Kind", kinds, index=kinds.index(v.get("kind", kinds[0])), key=f"{prefix}_kind", horizontal=True)
    with st.form(f"{prefix}_form"):
        form: dict[str, Any] = {"kind": kind}
        top = st.columns(3)
        form["name"] = top[0].text_input("Name", v.get("name", ""), disabled=not new, key=f"{prefix}_name")
        form["severity"] = _choice(top[1], "Severity", ["info", "warning", "critical"], v.get("severity", "warning"),
                                   f"{prefix}_severity")  # fmt: skip
        form["target"] = top[2].text_input("Target (glob, blank = any)", v.get("target", ""), key=f"{prefix}_target")
        form.update(_kind_fields(kind, v, prefix))
        last = st.columns([1, 2, 1], vertical_alignment="bottom")
        form["for"] = last[0].text_input("For (pending this long first)", v.get("for", "0s"), key=f"{prefix}_for")
        form["description"] = last[1].text_input("Description", v.get("description", ""), key=f"{prefix}_desc")
        form["enabled"] = last[2].checkbox("Enabled", v.get("enabled", True), key=f"{prefix}_enabled")
        if stored_notify:
            # Stored receivers may hold tokens: shown redacted, never put back into the field.
            st.text("Notifies: " + ", ".join(redact_url(u) for u in stored_notify))
        form["notify"] = st.text_area(
            "Notify (Apprise URLs, one per line; ${NAME} is read from the environment)"
            + (" - blank keeps the stored ones" if stored_notify else ""),
            "", key=f"{prefix}_notify", height=68,
        )  # fmt: skip
        if stored_notify:
            form["clear_notify"] = st.checkbox("Remove the stored receivers", key=f"{prefix}_clear_notify")
        submitted = st.form_submit_button("Create rule" if new else "Save rule")
    if submitted:
        try:
            raw = alert_tables.rule_raw(form, stored_notify=stored_notify)
        except GemmawatchError as exc:
            st.error(one_line(str(exc)))
            return
        cleared = prefix if new else f"{prefix}_notify"
        _act(lambda name: f"Rule {name} saved.", alert_data.save_rule, raw, new=new, clear=cleared)


def _choice(where: Any, label: str, options: list[str], value: str, key: str) -> Any:
    return where.selectbox(label, options, index=options.index(value) if value in options else 0, key=key)


def _number(where: Any, label: str, value: float, key: str, **bounds: float) -> float:
    return float(where.number_input(label, value=float(value), format="%g", key=key, **bounds))


def _kind_fields(kind: str, v: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The inputs of one rule kind (the kind is chosen outside the form: a form does not rerun on change)."""
    source = alert_tables.RULE_KINDS[kind][1]
    regression = alert_tables.RULE_KINDS[kind][0] == "regression"
    mid, low = st.columns(3), st.columns(4 if source == "telemetry" else 3)
    out: dict[str, Any] = {}
    out["metric"] = mid[0].text_input(
        "Telemetry metric" if source == "telemetry" else "Metric", v.get("metric", ""), key=f"{prefix}_metric",
        help="e.g. e2e_s_p95, acc, refusal_rate or max(process.rss_mb); probe.e2e_s for a telemetry window",
    )  # fmt: skip
    if regression:
        out["task"] = mid[1].text_input("Task", v.get("task", ""), key=f"{prefix}_task")
        out["baseline"] = mid[2].text_input("Baseline (previous, run:ID, label:NAME)", v.get("baseline", "previous"),
                                            key=f"{prefix}_baseline")  # fmt: skip
        out["max_drop"] = _number(low[0], "Largest tolerated drop", v.get("max_drop", 0.0), f"{prefix}_max_drop",
                                  min_value=0.0)  # fmt: skip
        out["alpha"] = _number(low[1], "alpha", v.get("alpha", 0.05), f"{prefix}_alpha", min_value=0.0001,
                               max_value=0.9999)  # fmt: skip
        out["higher_is_better"] = _choice(low[2], "Better when", list(alert_tables.HIGHER_IS_BETTER),
                                          v.get("higher_is_better", ""), f"{prefix}_hib")  # fmt: skip
        return out
    out["comparator"] = _choice(mid[1], "Alert when value is", list(COMPARE), v.get("comparator", ">"),
                                f"{prefix}_comparator")  # fmt: skip
    out["threshold"] = _number(mid[2], "Threshold", v.get("threshold", 0.0), f"{prefix}_threshold")
    if source == "telemetry":
        out["aggregation"] = _choice(low[0], "Aggregation", list(AGGREGATIONS), v.get("aggregation", "avg"),
                                     f"{prefix}_aggregation")  # fmt: skip
        out["window"] = low[1].text_input("Window", v.get("window", "5m"), key=f"{prefix}_window")
        out["group_by"] = low[2].text_input("Group by (blank: host, target)", v.get("group_by", ""),
                                            key=f"{prefix}_group_by")  # fmt: skip
        out["labels"] = low[3].text_input("Labels (name=value, ...)", v.get("labels", ""), key=f"{prefix}_labels")
    else:
        out["task"] = low[0].text_input("Task (glob, blank = any)", v.get("task", ""), key=f"{prefix}_task")
    return out


# --- test notification ----------------------------------------------------------------------------


def _test_section() -> None:
    st.subheader("Test a notification receiver")
    st.caption("Sends one test notification, like `gemmawatch alerts test-notify URL`.")
    cols = st.columns([4, 1, 1], vertical_alignment="bottom")
    url = cols[0].text_input(
        "Apprise URL (slack://..., mailtos://..., json://host:port/path; ${NAME} is read from the environment)",
        type="password",
        key="notify_url",
    )
    attempts = int(cols[1].number_input("Attempts", min_value=1, max_value=10, value=3, key="notify_attempts"))
    if cols[2].button("Send test", key="notify_send"):
        if not url.strip():
            st.info("Enter the receiver's URL first.")
            return
        with st.spinner("Sending..."):
            try:
                delivery = alert_data.send_test(url, attempts=attempts)
            except GemmawatchError as exc:  # Apprise is not installed
                st.error(one_line(str(exc)))
                return
        if delivery.ok:
            st.success(f"Delivered to {delivery.url} (attempt {delivery.attempts}).")
        else:
            st.error(f"Not delivered: {delivery.error or 'no reason given'}")


if __name__ == "__main__":
    render()
