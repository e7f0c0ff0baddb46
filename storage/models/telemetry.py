"""The ``telemetry`` table: resource readings (CPU, memory, GPU) sampled over time."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, BigIntId

if TYPE_CHECKING:
    from gemmawatch.storage.models.run import Run


class TelemetrySample(Base):
    """One reading of one metric from one source at one instant.

    ``run_id`` is NULL for readings taken outside a run (idle monitoring).
    """

    __tablename__ = "telemetry"
    __table_args__ = (
        # Charts read one run's series of a few metrics in time order.
        Index("ix_telemetry_run_id_metric_ts", "run_id", "metric", "ts"),
        # Time-range charts of one metric across runs and idle monitoring.
        Index("ix_telemetry_metric_ts", "metric", "ts"),
        # The rollup reads and prunes readings by time alone, across all metrics.
        Index("ix_telemetry_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    host: Mapped[str]
    source: Mapped[str]
    metric: Mapped[str]
    unit: Mapped[str]
    value: Mapped[float]
    ts: Mapped[datetime]
    interval_s: Mapped[float]
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)

    run: Mapped[Run | None] = relationship(back_populates="telemetry")

    def __repr__(self) -> str:
        return f"TelemetrySample(run_id={self.run_id!r}, metric={self.metric!r}, value={self.value!r})"
