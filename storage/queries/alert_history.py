"""Alert history: every transition (``alert_events``) and every notification delivery (``notifications``).

Re-exported by :mod:`gemmawatch.storage.queries.alerts`, the module callers use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import NOTIFIED_TRANSITIONS, AlertEvent, AlertNotification, utcnow
from gemmawatch.storage.queries._rows import table_of


def record_event(
    s: Session,
    alert_id: int,
    *,
    from_state: str | None,
    to_state: str,
    value: float | None,
    message: str,
    at: datetime | None = None,
) -> None:
    """Store one transition of ``alert_id`` (also acknowledgements and silences)."""
    s.execute(
        table_of(AlertEvent)
        .insert()
        .values(
            alert_id=alert_id,
            from_state=from_state,
            to_state=to_state,
            value=value,
            message=message,
            at=at or utcnow(),
        )
    )


def alert_events(s: Session, alert_id: int) -> list[dict[str, Any]]:
    """The alert's events, oldest first (keys: id, alert_id, from_state, to_state, value, message, at)."""
    table = table_of(AlertEvent)
    query = select(table).where(table.c.alert_id == alert_id).order_by(table.c.at, table.c.id)
    return [dict(row) for row in s.execute(query).mappings()]


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


def record_deliveries(s: Session, alert_id: int, transition: str, deliveries: Iterable[Any]) -> int:
    """Store notification outcomes (``Delivery`` objects or mappings with url, ok, attempts,
    error, at; ``url`` already redacted) of ``transition`` (firing/resolved); returns how many."""
    if transition not in NOTIFIED_TRANSITIONS:
        raise ValueError(f"notified transitions are {NOTIFIED_TRANSITIONS}, got {transition!r}")
    rows = [
        {
            "alert_id": alert_id,
            "transition": transition,
            "url": str(_field(d, "url")),
            "ok": bool(_field(d, "ok")),
            "attempts": int(_field(d, "attempts")),
            "error": _field(d, "error"),
            "sent_at": _field(d, "at") or utcnow(),
        }
        for d in deliveries
    ]
    if rows:
        s.execute(table_of(AlertNotification).insert(), rows)
    return len(rows)


def has_notification(s: Session, alert_id: int, transition: str) -> bool:
    """Whether ``transition`` of the alert was sent (or tried) to any receiver."""
    found = s.scalar(
        select(AlertNotification.id)
        .where(AlertNotification.alert_id == alert_id, AlertNotification.transition == transition)
        .limit(1)
    )
    return found is not None


def list_notifications(s: Session, *, alert_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest deliveries first (keys: id, alert_id, transition, url, ok, attempts, error, sent_at)."""
    table = table_of(AlertNotification)
    query = select(table).order_by(table.c.sent_at.desc(), table.c.id.desc()).limit(limit)
    if alert_id is not None:
        query = query.where(table.c.alert_id == alert_id)
    return [dict(row) for row in s.execute(query).mappings()]
