"""The alert tables: rules, the alerts they raise, every state change, every notification.

* ``alert_rules``: one row per rule. Columns common to every kind (name, kind,
  metric, comparator, threshold, severity, target glob, ``for_s``, ``notify``)
  plus the kind-specific ones, NULL where they do not apply: telemetry-window
  rules (``data_source = 'telemetry'``) use labels, group_by, aggregation and
  window_s; regression rules (``kind = 'regression'``) use baseline, alpha and
  higher_is_better, and keep their largest allowed drop in ``threshold`` (the
  rule is "drop > threshold", so ``comparator`` is always ``>``).
* ``alerts``: one row per alert instance, ``pending`` -> ``firing`` ->
  ``resolved``. ``series`` names what the alert is about within its rule
  (``target=gemma-prod`` or ``host=h1,target=gemma-prod``); at most one
  unresolved alert exists per (rule, series), which a partial unique index
  enforces, so concurrent evaluators cannot duplicate an alert.
* ``alert_events``: every transition (and acknowledgement, silence) with the
  value that caused it.
* ``notifications``: one row per receiver URL per notified transition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, JSONType, utcnow

#: Allowed values of :attr:`AlertRule.comparator`.
COMPARATORS: tuple[str, ...] = ("<", "<=", ">", ">=")
#: Allowed values of :attr:`AlertRule.kind`.
RULE_KINDS: tuple[str, ...] = ("threshold", "regression")
#: Allowed values of :attr:`AlertRule.data_source`: a stored run, or a telemetry window.
DATA_SOURCES: tuple[str, ...] = ("run", "telemetry")
#: Allowed values of :attr:`AlertRule.aggregation` (telemetry-window rules).
AGGREGATIONS: tuple[str, ...] = ("last", "avg", "min", "max", "p95", "rate", "error_ratio")
#: Allowed values of :attr:`AlertRule.severity`.
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
#: Allowed values of :attr:`Alert.state`.
ALERT_STATES: tuple[str, ...] = ("pending", "firing", "resolved")
#: Allowed values of :attr:`AlertEvent.to_state`: the states, plus the two user actions.
EVENT_STATES: tuple[str, ...] = (*ALERT_STATES, "acknowledged", "silenced")
#: Transitions that are notified (:attr:`AlertNotification.transition`).
NOTIFIED_TRANSITIONS: tuple[str, ...] = ("firing", "resolved")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class AlertRule(Base):
    """A rule such as "p95 latency > 10 s"; ``source`` says who defined it (default, config, user)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("comparator IN ('<', '<=', '>', '>=')", name="comparator"),
        CheckConstraint(_in("kind", RULE_KINDS), name="kind"),
        CheckConstraint(_in("data_source", DATA_SOURCES), name="data_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(default="threshold")
    metric: Mapped[str]
    task: Mapped[str | None]
    comparator: Mapped[str]
    threshold: Mapped[float]
    severity: Mapped[str]
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(default="default")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``run`` (metrics and telemetry summary of one run) or ``telemetry`` (a time window).
    data_source: Mapped[str] = mapped_column(default="run", server_default="run")
    #: fnmatch glob over target names (the run's target, or the ``target`` label); NULL = any.
    target: Mapped[str | None]
    #: Telemetry rules: labels a reading must carry (subset match).
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    #: Telemetry rules: series key (``host`` or label names); NULL = the default grouping.
    group_by: Mapped[list[str] | None] = mapped_column(JSONType)
    aggregation: Mapped[str | None]
    window_s: Mapped[float | None]
    #: Seconds a breach must last before the alert fires (0: at once).
    for_s: Mapped[float] = mapped_column(default=0.0, server_default="0")
    #: Apprise URLs notified for this rule (in addition to the per-severity ones).
    notify: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    #: Regression rules: ``previous``, ``run:ID`` or ``label:L``.
    baseline: Mapped[str | None]
    alpha: Mapped[float | None]
    higher_is_better: Mapped[bool | None]

    def __repr__(self) -> str:
        return f"AlertRule(name={self.name!r}, metric={self.metric!r} {self.comparator} {self.threshold!r})"


class Alert(Base):
    """An alert instance of a rule for one series: pending, then firing, then resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("state", ALERT_STATES), name="state"),
        Index(
            "uq_alerts_rule_id_series_open",
            "rule_id",
            "series",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alerts_fired_at", "fired_at"),
        Index("ix_alerts_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="SET NULL"), index=True)
    #: What the alert is about within its rule, e.g. ``target=gemma-prod`` ('' = the rule as a whole).
    series: Mapped[str] = mapped_column(default="", server_default="")
    state: Mapped[str] = mapped_column(default="firing")
    value: Mapped[float]
    message: Mapped[str] = mapped_column(Text)
    #: When the breach was first seen (the alert was created, pending or firing).
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When it started firing (NULL while pending, and for a pending alert that resolved).
    fired_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    #: No notifications until then.
    silenced_until: Mapped[datetime | None]

    rule: Mapped[AlertRule] = relationship()

    def __repr__(self) -> str:
        return f"Alert(id={self.id!r}, rule_id={self.rule_id!r}, state={self.state!r})"


class AlertEvent(Base):
    """One state change of an alert (``from_state`` NULL when it was created), with its cause."""

    __tablename__ = "alert_events"
    __table_args__ = (
        CheckConstraint(_in("to_state", EVENT_STATES), name="to_state"),
        Index("ix_alert_events_alert_id_at", "alert_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    value: Mapped[float | None]
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"AlertEvent(alert_id={self.alert_id!r}, {self.from_state!r} -> {self.to_state!r})"


class AlertNotification(Base):
    """The delivery of one notified transition to one receiver (``url`` is redacted)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in("transition", NOTIFIED_TRANSITIONS), name="transition"),
        Index("ix_notifications_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    transition: Mapped[str]
    url: Mapped[str]
    ok: Mapped[bool]
    attempts: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"AlertNotification(alert_id={self.alert_id!r}, transition={self.transition!r}, ok={self.ok!r})"
