"""The ``load_requests`` table: the raw timings of every request of a load test.

One row per :class:`~gemmawatch.collectors.load.events.RequestEvent`, so any
statistic (a new percentile, another measurement window, a goodput SLO) can be
recomputed later from what was observed instead of from stored averages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, BigIntId, JSONType

if TYPE_CHECKING:
    from gemmawatch.storage.models.run import Run

#: Allowed values of :attr:`LoadRequest.phase` (``gemmawatch.collectors.load.events.PHASES``).
LOAD_PHASES: tuple[str, ...] = ("warmup", "measure", "cooldown")


class LoadRequest(Base):
    """One load-test request: when it was planned, sent, answered and how it ended.

    Times are seconds from the load test's own start (see ``RequestEvent``);
    ``chunk_s`` holds the arrival time of every text-carrying chunk and may be
    empty when per-chunk times were not kept (``n_chunks`` still counts them).
    """

    __tablename__ = "load_requests"
    __table_args__ = (
        CheckConstraint("phase IN ('warmup', 'measure', 'cooldown')", name="phase"),
        # Requests are always read per run, step by step in schedule order.
        Index("ix_load_requests_run_id_step_seq", "run_id", "step", "seq"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int]
    seq: Mapped[int]
    phase: Mapped[str]
    scheduled_s: Mapped[float | None]
    sent_s: Mapped[float]
    first_chunk_s: Mapped[float | None]
    end_s: Mapped[float | None]
    n_chunks: Mapped[int]
    chunk_s: Mapped[list[float]] = mapped_column(JSONType, default=list)
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    token_source: Mapped[str]
    status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None]

    run: Mapped[Run] = relationship(back_populates="load_requests")

    def __repr__(self) -> str:
        return f"LoadRequest(run_id={self.run_id!r}, step={self.step!r}, seq={self.seq!r})"
