"""The alert state machine: one evaluation of one rule on one series -> stored transitions.

States and transitions (each stored as an ``alert_events`` row with the value
that caused it):

* breach, nothing open: a new alert, ``firing`` at once when the rule's
  ``for`` is 0, else ``pending`` (stored, not notified);
* breach, ``pending`` for at least ``for``: ``pending -> firing`` (notified);
  sooner: stays pending (latest value kept);
* breach, ``firing``: stays firing, value, message and run refreshed (no event,
  no notification: one alert per rule and series while it fires);
* within threshold, ``pending``: ``pending -> resolved``, quietly;
* within threshold, ``firing``: ``firing -> resolved`` (notified);
* no data: nothing changes.

Notifications: an alert *silenced* until a later time sends nothing. When a
silence ends while the alert still fires, the firing notification is sent at
the next evaluation (unless it was sent before, or the alert was
acknowledged). Receivers are the rule's ``notify`` URLs followed by the
config's URLs for the rule's severity (duplicates dropped). Nothing is sent
here: :class:`Notice` objects are handed to
:mod:`gemmawatch.alerts.dispatch`, which sends them after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gemmawatch.alerts.config import AnyRule
from gemmawatch.alerts.rules import Evaluation

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Per-severity receivers (the config's ``notifications:``).
Routes = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Subject:
    """What one evaluation is about: a rule (with its id) and one series of it."""

    rule_id: int
    rule: AnyRule
    series: str
    target: str | None = None
    target_id: int | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class Notice:
    """A transition to notify once the transaction that stored it has committed."""

    alert_id: int
    transition: str
    urls: tuple[str, ...]
    rule: str
    severity: str
    value: float
    message: str
    target: str | None


def receivers(rule: AnyRule, routes: Routes | None) -> tuple[str, ...]:
    """The rule's own URLs, then its severity's, without duplicates."""
    urls = [*rule.notify, *((routes or {}).get(rule.severity, ()))]
    return tuple(dict.fromkeys(u for u in urls if u))


def _silenced(alert: Mapping[str, Any], now: datetime) -> bool:
    until = alert.get("silenced_until")
    return until is not None and until > now


def apply(
    session: Session, subject: Subject, ev: Evaluation, *, now: datetime, routes: Routes | None = None
) -> tuple[dict[str, Any] | None, Notice | None]:
    """Record what ``ev`` means for the subject's alert.

    Returns:
        The transition (None when nothing is open and the value is fine) as a
        dict with keys rule, severity, state, from_state, value, message,
        alert_id, new (False when the alert was already in that state),
        series, target, notify (whether a notification is due); and the
        notice to send, if any.
    """
    from gemmawatch.storage.queries import alerts as aq

    rule = subject.rule
    message = ev.message(subject.run_id)
    open_ = aq.open_alert(session, rule_id=subject.rule_id, series=subject.series)
    base = {
        "rule": rule.name,
        "severity": rule.severity,
        "value": ev.value,
        "message": message,
        "series": subject.series,
        "target": subject.target,
    }

    def notice(alert_id: int, transition: str, alert: Mapping[str, Any] | None) -> Notice | None:
        urls = receivers(rule, routes)
        if not urls or (alert is not None and _silenced(alert, now)):
            return None
        return Notice(alert_id, transition, urls, rule.name, rule.severity, ev.value, message, subject.target)

    if not ev.breached:
        if open_ is None:
            return None, None
        alert_id, was = int(open_["id"]), str(open_["state"])
        aq.set_alert_state(
            session, alert_id, from_state=was, to_state="resolved", value=ev.value, message=message,
            run_id=subject.run_id, at=now,
        )  # fmt: skip
        note = notice(alert_id, "resolved", open_) if was == "firing" else None
        out = {**base, "state": "resolved", "from_state": was, "alert_id": alert_id, "new": True}
        return {**out, "notify": note is not None}, note

    if open_ is None:
        state = "firing" if rule.for_s <= 0 else "pending"
        alert_id, created = aq.create_alert(
            session, rule_id=subject.rule_id, series=subject.series, state=state, value=ev.value,
            message=message, run_id=subject.run_id, target_id=subject.target_id, at=now,
        )  # fmt: skip
        open_ = aq.open_alert(session, rule_id=subject.rule_id, series=subject.series)
        if created:
            note = notice(alert_id, "firing", open_) if state == "firing" else None
            out = {**base, "state": state, "from_state": None, "alert_id": alert_id, "new": True}
            return {**out, "notify": note is not None}, note
        assert open_ is not None  # a concurrent evaluator opened it: continue as if we had seen it

    alert_id, was = int(open_["id"]), str(open_["state"])
    if was == "pending":
        if (now - open_["started_at"]).total_seconds() >= rule.for_s:
            aq.set_alert_state(
                session, alert_id, from_state="pending", to_state="firing", value=ev.value, message=message,
                run_id=subject.run_id, at=now,
            )  # fmt: skip
            note = notice(alert_id, "firing", open_)
            out = {**base, "state": "firing", "from_state": "pending", "alert_id": alert_id, "new": True}
            return {**out, "notify": note is not None}, note
        aq.update_alert(session, alert_id, value=ev.value, message=message, run_id=subject.run_id)
        return {**base, "state": "pending", "from_state": "pending", "alert_id": alert_id, "new": False,
                "notify": False}, None  # fmt: skip

    aq.update_alert(session, alert_id, value=ev.value, message=message, run_id=subject.run_id)
    note = None
    if open_.get("acknowledged_at") is None and not aq.has_notification(session, alert_id, "firing"):
        note = notice(alert_id, "firing", open_)  # e.g. a silence just ended
    out = {**base, "state": "firing", "from_state": "firing", "alert_id": alert_id, "new": False}
    return {**out, "notify": note is not None}, note
