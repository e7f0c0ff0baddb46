"""The ``alert_rules`` and ``alerts`` tables: thresholds and the alerts they fire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, utcnow

#: Allowed values of :attr:`AlertRule.comparator`.
COMPARATORS: tuple[str, ...] = ("<", "<=", ">", ">=")
#: Allowed values of :attr:`Alert.state`.
ALERT_STATES: tuple[str, ...] = ("firing", "resolved")


class AlertRule(Base):
    """A rule such as "p95 latency > 10 s"; ``source`` says who defined it."""

    __tablename__ = "alert_rules"
    __table_args__ = (CheckConstraint("comparator IN ('<', '<=', '>', '>=')", name="comparator"),)

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

    def __repr__(self) -> str:
        return f"AlertRule(name={self.name!r}, metric={self.metric!r} {self.comparator} {self.threshold!r})"


class Alert(Base):
    """An alert instance: fired by a rule for a target, later resolved.

    At most one *firing* alert exists per (rule, target): a partial unique
    index enforces it, so concurrent evaluators cannot duplicate an alert.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("state IN ('firing', 'resolved')", name="state"),
        Index(
            "uq_alerts_rule_id_target_id_firing",
            "rule_id",
            "target_id",
            unique=True,
            sqlite_where=text("state = 'firing'"),
            postgresql_where=text("state = 'firing'"),
        ),
        Index("ix_alerts_fired_at", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(default="firing")
    value: Mapped[float]
    message: Mapped[str] = mapped_column(Text)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]

    rule: Mapped[AlertRule] = relationship()

    def __repr__(self) -> str:
        return f"Alert(id={self.id!r}, rule_id={self.rule_id!r}, state={self.state!r})"
