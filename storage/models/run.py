"""The ``runs`` table: one execution (an eval, a demo, a latency probe...)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, utcnow

if TYPE_CHECKING:
    from gemmawatch.storage.models.load import LoadRequest
    from gemmawatch.storage.models.metric import MetricResult
    from gemmawatch.storage.models.sample import Sample
    from gemmawatch.storage.models.target import Target
    from gemmawatch.storage.models.telemetry import TelemetrySample

#: Allowed values of :attr:`Run.status`.
RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "partial")


class Run(Base):
    """A run and its provenance; metrics, samples, telemetry and load requests hang off it.

    Deleting a run deletes its children (``ON DELETE CASCADE`` in the database,
    so it also holds for bulk deletes that bypass the ORM). Deleting a target
    keeps its runs and sets ``target_id`` to NULL.
    """

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'completed', 'failed', 'partial')",
            name="status",
        ),
        # The runs list is always newest first.
        Index("ix_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str]
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="SET NULL"), index=True)
    label: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    host: Mapped[str]
    versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    target: Mapped[Target | None] = relationship()
    metrics: Mapped[list[MetricResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    samples: Mapped[list[Sample]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    telemetry: Mapped[list[TelemetrySample]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    load_requests: Mapped[list[LoadRequest]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, kind={self.kind!r}, status={self.status!r})"
