"""The ``metrics`` table: one aggregate score of a run (task x metric x filter)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base

if TYPE_CHECKING:
    from gemmawatch.storage.models.run import Run


class MetricResult(Base):
    """An aggregate metric with its uncertainty and who computed it.

    ``producer``/``producer_version``/``task_version`` make scores comparable
    only when they were computed the same way (lm-eval version, task hash).
    """

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str]
    metric: Mapped[str]
    filter: Mapped[str] = mapped_column(default="none")
    value: Mapped[float]
    stderr: Mapped[float | None]
    ci_low: Mapped[float | None]
    ci_high: Mapped[float | None]
    n: Mapped[int]
    higher_is_better: Mapped[bool | None]
    producer: Mapped[str]
    producer_version: Mapped[str]
    task_version: Mapped[str | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    run: Mapped[Run] = relationship(back_populates="metrics")

    def __repr__(self) -> str:
        return f"MetricResult(run_id={self.run_id!r}, task={self.task!r}, metric={self.metric!r})"
