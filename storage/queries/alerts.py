"""Alert rules and alert instances (fire with dedupe, resolve, acknowledge, list)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, text, update
from sqlalchemy.orm import Session

from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.storage.models import ALERT_STATES, COMPARATORS, Alert, AlertRule, Target, utcnow
from gemmawatch.storage.queries._rows import insert_or_update, table_of, upsert_returning_id

_RULE_FIELDS = ("kind", "metric", "task", "comparator", "threshold", "severity", "enabled", "description", "source")


def upsert_rule(
    s: Session,
    *,
    name: str,
    kind: str,
    metric: str,
    comparator: str,
    threshold: float,
    severity: str,
    task: str | None = None,
    enabled: bool = True,
    description: str = "",
    source: str = "default",
) -> int:
    """Create the rule ``name`` or replace its definition; returns its id."""
    if comparator not in COMPARATORS:
        raise ConfigError(
            f"Alert rule '{name}' has comparator {comparator!r}. Fix: use one of {', '.join(COMPARATORS)}"
        )
    values = {
        "name": name,
        "kind": kind,
        "metric": metric,
        "task": task,
        "comparator": comparator,
        "threshold": float(threshold),
        "severity": severity,
        "enabled": enabled,
        "description": description,
        "source": source,
        "created_at": utcnow(),
    }
    return upsert_returning_id(s, AlertRule, values, key="name", update=_RULE_FIELDS)


def list_rules(s: Session, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    """All rules ordered by name, as dicts of all columns."""
    table = table_of(AlertRule)
    query = select(table).order_by(table.c.name)
    if enabled_only:
        query = query.where(table.c.enabled.is_(True))
    return [dict(row) for row in s.execute(query).mappings()]


def fire_alert(
    s: Session, *, rule_id: int, run_id: int | None, target_id: int | None, value: float, message: str
) -> int:
    """Fire ``rule_id`` for ``target_id``; returns the alert id.

    Dedupe: if that rule already has a firing alert for that target, it is
    updated (value, message, latest run) instead of a second one being added;
    ``fired_at`` and any acknowledgement are kept.
    """
    latest = {"value": float(value), "message": message, "run_id": run_id}
    existing = s.scalar(select(Alert.id).where(*_firing(rule_id, target_id)))
    if existing is not None:
        s.execute(update(Alert).where(Alert.id == existing).values(latest))
        return int(existing)
    values = {**latest, "rule_id": rule_id, "target_id": target_id, "state": "firing", "fired_at": utcnow()}
    table = table_of(Alert)
    if target_id is not None:
        # Another process may have fired the same alert since the SELECT: the
        # partial unique index turns that race into an update, not an error.
        alert_id = insert_or_update(
            s, table, values, conflict=["rule_id", "target_id"], update=latest, where=text("state = 'firing'")
        )
        if alert_id is not None:
            return alert_id
    return int(s.execute(table.insert().values(values).returning(table.c.id)).scalar_one())


def firing_alert_id(s: Session, *, rule_id: int, target_id: int | None) -> int | None:
    """Id of the alert of ``rule_id`` now firing for ``target_id``, or None."""
    existing = s.scalar(select(Alert.id).where(*_firing(rule_id, target_id)))
    return None if existing is None else int(existing)


def resolve_alert(s: Session, *, rule_id: int, target_id: int | None, value: float) -> int | None:
    """Resolve the firing alert of ``rule_id`` for ``target_id``; its id, or None if none was firing."""
    existing = s.scalar(select(Alert.id).where(*_firing(rule_id, target_id)))
    if existing is None:
        return None
    s.execute(
        update(Alert).where(Alert.id == existing).values(state="resolved", resolved_at=utcnow(), value=float(value))
    )
    return int(existing)


def list_alerts(s: Session, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest alerts first. Keys: id, rule, state, severity, value, message, fired_at,
    resolved_at, acknowledged_at, run_id, target (name), plus rule_id, target_id, metric.
    """
    if state is not None and state not in ALERT_STATES:
        raise ValueError(f"alert state must be one of {ALERT_STATES}, got {state!r}")
    query = (
        select(
            Alert.id,
            AlertRule.name.label("rule"),
            Alert.state,
            AlertRule.severity,
            Alert.value,
            Alert.message,
            Alert.fired_at,
            Alert.resolved_at,
            Alert.acknowledged_at,
            Alert.run_id,
            Target.name.label("target"),
            Alert.rule_id,
            Alert.target_id,
            AlertRule.metric,
        )
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Target, Target.id == Alert.target_id)
        .order_by(Alert.fired_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(Alert.state == state)
    return [dict(row) for row in s.execute(query).mappings()]


def acknowledge_alert(s: Session, alert_id: int) -> None:
    """Mark an alert as seen (the first acknowledgement time is kept)."""
    found = s.scalar(select(Alert.acknowledged_at.is_not(None)).where(Alert.id == alert_id))
    if found is None:
        raise UnknownNameError(f"Unknown alert id {alert_id}. Fix: list alerts in the dashboard")
    if not found:
        s.execute(update(Alert).where(Alert.id == alert_id).values(acknowledged_at=utcnow()))


def _firing(rule_id: int, target_id: int | None) -> list[ColumnElement[bool]]:
    target = Alert.target_id.is_(None) if target_id is None else Alert.target_id == target_id
    return [Alert.rule_id == rule_id, target, Alert.state == "firing"]
