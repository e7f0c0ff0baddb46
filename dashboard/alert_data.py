"""Data access of the Alerts page: cached readers and the writes (acknowledge, silence, rules, test send).

The same contract as :mod:`gemmawatch.dashboard.data` (kept apart only because
that module is at the size limit): pages call the public functions here; readers
are ``@st.cache_data`` wrappers over the storage query functions, keyed by the
database URL; no SQL. Writes call exactly what ``gemmawatch alerts ...`` calls
(``acknowledge_alert``, ``silence_alert``, ``set_rule_enabled``, ``save_rule``
after ``validate_rule``, ``send_test_notification``), then clear the alert caches
so the next rerun shows the new state. A write raises
:class:`~gemmawatch.errors.GemmawatchError` (a database failure as
:class:`~gemmawatch.errors.DatabaseError`) for the page to show as one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import streamlit as st

from gemmawatch.alerts.catalog import save_rule as store_rule
from gemmawatch.alerts.catalog import seed_default_rules
from gemmawatch.alerts.config import validate_rule
from gemmawatch.alerts.durations import DURATION_HINT, parse_duration
from gemmawatch.alerts.notify import Delivery
from gemmawatch.dashboard import data
from gemmawatch.dashboard.data import TTL_S, _guarded, _query
from gemmawatch.errors import UserError
from gemmawatch.storage.queries import alert_rules as rule_queries
from gemmawatch.storage.queries import alerts as alert_queries

__all__ = [
    "MAX_ALERTS",
    "acknowledge",
    "alert_events",
    "alert_list",
    "notifications",
    "rules",
    "save_rule",
    "seed_rules",
    "send_test",
    "set_rule_enabled",
    "silence",
]

#: Newest alerts listed.
MAX_ALERTS = 500
#: Where errors of the rule form say the rule came from.
FORM_SOURCE = "the dashboard form"

R = TypeVar("R")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alert_list(url: str, limit: int) -> list[dict[str, Any]]:
    return _query(url, alert_queries.list_alerts, limit=limit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alert_events(url: str, alert_id: int) -> list[dict[str, Any]]:
    return _query(url, alert_queries.alert_events, alert_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _notifications(url: str, alert_id: int) -> list[dict[str, Any]]:
    return _query(url, alert_queries.list_notifications, alert_id=alert_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _rules(url: str) -> list[dict[str, Any]]:
    return _query(url, rule_queries.list_rules)


@_guarded
def alert_list(limit: int = MAX_ALERTS) -> list[dict[str, Any]]:
    """Newest alerts of every state (``list_alerts`` dicts)."""
    return _alert_list(data.db_url(), int(limit))


@_guarded
def alert_events(alert_id: int) -> list[dict[str, Any]]:
    """The alert's transitions, acknowledgements and silences, oldest first, each with its value."""
    return _alert_events(data.db_url(), int(alert_id))


@_guarded
def notifications(alert_id: int) -> list[dict[str, Any]]:
    """Deliveries of the alert's notifications, newest first (URLs stored redacted)."""
    return _notifications(data.db_url(), int(alert_id))


@_guarded
def rules() -> list[dict[str, Any]]:
    """Every stored rule (``list_rules`` dicts, by name)."""
    return _rules(data.db_url())


def _clear() -> None:
    # Only the alert readers: other pages' caches are unaffected by these writes.
    data._alerts.clear()  # the Overview's firing alerts
    for reader in (_alert_list, _alert_events, _notifications, _rules):
        reader.clear()


def _write(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    return data.write(fn, *args, clear=_clear, **kwargs)


def acknowledge(alert_id: int) -> bool:
    """Acknowledge an alert (as ``gemmawatch alerts ack``); False when it already was."""
    return _write(alert_queries.acknowledge_alert, int(alert_id))


def silence(alert_id: int, duration: str) -> datetime:
    """Silence an alert for ``duration`` (``30m``, ``2h``, ``1d``; as ``gemmawatch alerts silence --for``).

    Returns when the silence ends (UTC).

    Raises:
        UserError: Not a positive duration.
    """
    try:
        seconds = parse_duration(duration.strip())
    except ValueError as exc:
        raise UserError(f"Silence for {duration!r}: not a positive duration. Fix: {DURATION_HINT}") from exc
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    _write(alert_queries.silence_alert, int(alert_id), until)
    return until


def set_rule_enabled(name: str, enabled: bool) -> None:
    """Enable or disable a rule (re-seeding the defaults keeps the choice)."""
    _write(rule_queries.set_rule_enabled, name, bool(enabled))


def save_rule(raw: Mapping[str, Any], *, new: bool) -> str:
    """Validate a rule mapping like a ``gemmawatch.yaml`` entry and store it as a user rule; its name.

    Raises:
        ConfigError: The rule is not valid (one line: field and fix), so the
            page can never store a rule the engine would skip.
        UserError: ``new`` and a rule of that name exists already.
    """
    name = str(raw.get("name") or "")
    rule = validate_rule(raw, label=f"alert rule {name!r}" if name else "alert rule", source=FORM_SOURCE)

    def store(session: Any) -> None:
        if new and rule_queries.get_rule(session, rule.name) is not None:
            raise UserError(f"An alert rule named {rule.name!r} exists already. Fix: edit it, or pick another name")
        store_rule(session, rule, source="user")

    _write(store)
    return rule.name


def seed_rules() -> int:
    """Store the built-in rules (as ``gemmawatch alerts rules`` does first); how many were written."""
    return len(_write(seed_default_rules))


def send_test(url: str, *, attempts: int = 3, timeout_s: float = 10.0) -> Delivery:
    """Send one test notification (as ``gemmawatch alerts test-notify``); the outcome, URL redacted."""
    from gemmawatch.alerts.notify import AppriseNotifier, send_test_notification

    notifier = AppriseNotifier(attempts=attempts, timeout_s=timeout_s)
    return send_test_notification(notifier, url.strip())
