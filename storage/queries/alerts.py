"""Alert instances: open (deduplicated), move through states, acknowledge, silence, list; their
events and notification deliveries.

An alert belongs to a rule and a *series* (``target=gemma-prod`` for rules on
runs, ``host=h1,target=gemma-prod`` for telemetry windows; ``""`` for the rule
as a whole). At most one unresolved (pending or firing) alert exists per rule
and series: a partial unique index enforces it, and :func:`create_alert`
turns a concurrent duplicate into "already open". Every state change, and
every acknowledgement and silence, is stored in ``alert_events`` with the
value that caused it.

Rule functions live in :mod:`gemmawatch.storage.queries.alert_rules`, events
and deliveries in :mod:`gemmawatch.storage.queries.alert_history`; both are
re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gemmawatch.errors import UnknownNameError, UserError
from gemmawatch.storage.models import (
    ALERT_STATES,
    Alert,
    AlertRule,
    Target,
    as_utc,
    utcnow,
)
from gemmawatch.storage.queries._rows import table_of
from gemmawatch.storage.queries.alert_history import (
    alert_events,
    has_notification,
    list_notifications,
    record_deliveries,
    record_event,
)
from gemmawatch.storage.queries.alert_rules import (
    delete_rule,
    get_rule,
    list_rules,
    set_rule_enabled,
    upsert_rule,
)

__all__ = [
    "acknowledge_alert",
    "alert_events",
    "create_alert",
    "delete_rule",
    "fire_alert",
    "firing_alert_id",
    "get_alert",
    "get_rule",
    "has_notification",
    "list_alerts",
    "list_notifications",
    "list_rules",
    "open_alert",
    "record_deliveries",
    "record_event",
    "resolve_alert",
    "set_alert_state",
    "set_rule_enabled",
    "silence_alert",
    "target_series",
    "update_alert",
    "upsert_rule",
]

_OPEN_WHERE = "state != 'resolved'"
_UNKNOWN_FIX = "Fix: list alerts with `gemmawatch alerts list`"


def target_series(target: str | None) -> str:
    """The series key of an alert about a whole target (``""`` without one)."""
    return f"target={target}" if target else ""


def _series_of_target(s: Session, target_id: int | None) -> str:
    if target_id is None:
        return ""
    return target_series(s.scalar(select(Target.name).where(Target.id == target_id)))


def _open(rule_id: int, series: str) -> list[ColumnElement[bool]]:
    return [Alert.rule_id == rule_id, Alert.series == series, Alert.state != "resolved"]


def open_alert(s: Session, *, rule_id: int, series: str) -> dict[str, Any] | None:
    """The unresolved alert of ``rule_id`` for ``series`` (keys: id, state, value, started_at,
    fired_at, acknowledged_at, silenced_until, run_id), or None."""
    row = (
        s.execute(
            select(
                Alert.id,
                Alert.state,
                Alert.value,
                Alert.started_at,
                Alert.fired_at,
                Alert.acknowledged_at,
                Alert.silenced_until,
                Alert.run_id,
            ).where(*_open(rule_id, series))
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def create_alert(
    s: Session,
    *,
    rule_id: int,
    series: str,
    state: str,
    value: float,
    message: str,
    run_id: int | None = None,
    target_id: int | None = None,
    at: datetime | None = None,
) -> tuple[int, bool]:
    """Open a new ``pending`` or ``firing`` alert; returns ``(id, created)``.

    When one is already open for the rule and series (also one a concurrent
    evaluator opened a moment ago) nothing is written and ``created`` is
    False. A new alert inherits a silence still running on the previous
    alert of the same rule and series, so a flapping alert stays quiet.
    """
    if state not in ("pending", "firing"):
        raise ValueError(f"a new alert is pending or firing, not {state!r}")
    at = at or utcnow()
    silenced = s.scalar(
        select(func.max(Alert.silenced_until)).where(
            Alert.rule_id == rule_id, Alert.series == series, Alert.silenced_until > at
        )
    )
    values = {
        "rule_id": rule_id,
        "series": series,
        "state": state,
        "value": float(value),
        "message": message,
        "run_id": run_id,
        "target_id": target_id,
        "started_at": at,
        "fired_at": at if state == "firing" else None,
        "silenced_until": silenced,
    }
    table = table_of(Alert)
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table).values(values)
        stmt = insert.on_conflict_do_nothing(
            index_elements=[table.c.rule_id, table.c.series], index_where=text(_OPEN_WHERE)
        ).returning(table.c.id)
        new_id = s.execute(stmt).scalar()
    else:  # pragma: no cover - other dialects: check then write (single writer)
        new_id = (
            None
            if open_alert(s, rule_id=rule_id, series=series)
            else s.execute(table.insert().values(values).returning(table.c.id)).scalar()
        )
    if new_id is None:
        existing = open_alert(s, rule_id=rule_id, series=series)
        assert existing is not None
        return int(existing["id"]), False
    record_event(s, int(new_id), from_state=None, to_state=state, value=float(value), message=message, at=at)
    return int(new_id), True


def set_alert_state(
    s: Session,
    alert_id: int,
    *,
    from_state: str,
    to_state: str,
    value: float,
    message: str,
    run_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Move an alert to ``firing`` or ``resolved`` with the value that caused it, and store the event."""
    if to_state not in ("firing", "resolved"):
        raise ValueError(f"alerts move to firing or resolved, not {to_state!r}")
    at = at or utcnow()
    values: dict[str, Any] = {"state": to_state, "value": float(value), "message": message}
    values["fired_at" if to_state == "firing" else "resolved_at"] = at
    if run_id is not None:
        values["run_id"] = run_id
    s.execute(update(Alert).where(Alert.id == alert_id).values(values))
    record_event(s, alert_id, from_state=from_state, to_state=to_state, value=float(value), message=message, at=at)


def update_alert(s: Session, alert_id: int, *, value: float, message: str, run_id: int | None = None) -> None:
    """Refresh an open alert's latest value and message (no state change, no event)."""
    values: dict[str, Any] = {"value": float(value), "message": message}
    if run_id is not None:
        values["run_id"] = run_id
    s.execute(update(Alert).where(Alert.id == alert_id).values(values))


def fire_alert(
    s: Session,
    *,
    rule_id: int,
    run_id: int | None,
    target_id: int | None,
    value: float,
    message: str,
    series: str | None = None,
) -> int:
    """Fire ``rule_id`` for ``target_id`` (series ``target=<name>`` unless given); returns the alert id.

    Dedupe: an alert already firing for that rule and series is updated
    (value, message, latest run) instead of a second one being added;
    ``fired_at`` and any acknowledgement are kept. A pending one starts firing.
    """
    series = _series_of_target(s, target_id) if series is None else series
    existing = open_alert(s, rule_id=rule_id, series=series)
    if existing is None:
        alert_id, created = create_alert(
            s, rule_id=rule_id, series=series, state="firing", value=value, message=message,
            run_id=run_id, target_id=target_id,
        )  # fmt: skip
        if created:
            return alert_id
        existing = open_alert(s, rule_id=rule_id, series=series)
        assert existing is not None
    if existing["state"] == "pending":
        set_alert_state(
            s, int(existing["id"]), from_state="pending", to_state="firing", value=value, message=message,
            run_id=run_id,
        )  # fmt: skip
    else:
        s.execute(update(Alert).where(Alert.id == existing["id"]).values(value=float(value), message=message,
                                                                          run_id=run_id))  # fmt: skip
    return int(existing["id"])


def firing_alert_id(s: Session, *, rule_id: int, target_id: int | None) -> int | None:
    """Id of the alert of ``rule_id`` now firing for ``target_id``'s series, or None."""
    existing = open_alert(s, rule_id=rule_id, series=_series_of_target(s, target_id))
    return int(existing["id"]) if existing is not None and existing["state"] == "firing" else None


def resolve_alert(s: Session, *, rule_id: int, target_id: int | None, value: float) -> int | None:
    """Resolve the open alert of ``rule_id`` for ``target_id``'s series; its id, or None if none was open."""
    existing = open_alert(s, rule_id=rule_id, series=_series_of_target(s, target_id))
    if existing is None:
        return None
    message = f"resolved: value {float(value):.4g}"
    set_alert_state(
        s, int(existing["id"]), from_state=existing["state"], to_state="resolved", value=value, message=message
    )
    return int(existing["id"])


def _alert_query() -> Any:
    return (
        select(
            Alert.id,
            AlertRule.name.label("rule"),
            Alert.state,
            AlertRule.severity,
            Alert.value,
            Alert.message,
            Alert.started_at,
            Alert.fired_at,
            Alert.resolved_at,
            Alert.acknowledged_at,
            Alert.silenced_until,
            Alert.run_id,
            Target.name.label("target"),
            Alert.series,
            Alert.rule_id,
            Alert.target_id,
            AlertRule.metric,
        )
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Target, Target.id == Alert.target_id)
    )


def list_alerts(
    s: Session, *, state: str | None = None, limit: int = 100, rule: str | None = None
) -> list[dict[str, Any]]:
    """Newest alerts first (by when the breach was first seen).

    Keys: id, rule, state, severity, value, message, started_at, fired_at,
    resolved_at, acknowledged_at, silenced_until, run_id, target (name),
    series, rule_id, target_id, metric.
    """
    if state is not None and state not in ALERT_STATES:
        raise ValueError(f"alert state must be one of {ALERT_STATES}, got {state!r}")
    query = _alert_query().order_by(Alert.started_at.desc(), Alert.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Alert.state == state)
    if rule is not None:
        query = query.where(AlertRule.name == rule)
    return [dict(row) for row in s.execute(query).mappings()]


def get_alert(s: Session, alert_id: int) -> dict[str, Any] | None:
    """One alert with the keys of :func:`list_alerts`, or None."""
    row = s.execute(_alert_query().where(Alert.id == alert_id)).mappings().first()
    return None if row is None else dict(row)


def _require(s: Session, alert_id: int) -> dict[str, Any]:
    row = (
        s.execute(select(Alert.state, Alert.value, Alert.acknowledged_at).where(Alert.id == alert_id))
        .mappings()
        .first()
    )
    if row is None:
        raise UnknownNameError(f"Unknown alert id {alert_id}. {_UNKNOWN_FIX}")
    return dict(row)


def acknowledge_alert(s: Session, alert_id: int, *, at: datetime | None = None) -> bool:
    """Mark an alert as seen; False when it already was (the first time is kept).

    An acknowledged alert sends no further "firing" notification (a silence
    that ends does not re-announce it); its resolution is still notified.

    Raises:
        UnknownNameError: No alert has this id.
    """
    row = _require(s, alert_id)
    if row["acknowledged_at"] is not None:
        return False
    at = at or utcnow()
    s.execute(update(Alert).where(Alert.id == alert_id).values(acknowledged_at=at))
    record_event(
        s, alert_id, from_state=row["state"], to_state="acknowledged", value=row["value"],
        message="acknowledged", at=at,
    )  # fmt: skip
    return True


def silence_alert(s: Session, alert_id: int, until: datetime, *, at: datetime | None = None) -> None:
    """Send no notifications for an alert (and its re-fires on the same series) until ``until``.

    Raises:
        UnknownNameError: No alert has this id.
        UserError: ``until`` is not in the future.
    """
    row = _require(s, alert_id)
    at = at or utcnow()
    until = as_utc(until)
    if until <= at:
        raise UserError(
            f"Cannot silence alert {alert_id} until {until.isoformat(timespec='seconds')}: that is not in the "
            "future. Fix: give a later time or a positive duration"
        )
    s.execute(update(Alert).where(Alert.id == alert_id).values(silenced_until=until))
    record_event(
        s, alert_id, from_state=row["state"], to_state="silenced", value=row["value"],
        message=f"silenced until {until.isoformat(timespec='seconds')}", at=at,
    )  # fmt: skip
