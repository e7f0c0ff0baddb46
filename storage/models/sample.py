"""The ``samples`` table: one prompt/response of a run, with its scores and timings."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gemmawatch.storage.models.base import Base, BigIntId

if TYPE_CHECKING:
    from gemmawatch.storage.models.run import Run


class Sample(Base):
    """A single evaluated document: what was asked, what came back, how it scored."""

    __tablename__ = "samples"
    __table_args__ = (
        # The sample browser pages through one run ordered by task, doc_id.
        Index("ix_samples_run_id_task_doc_id", "run_id", "task", "doc_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task: Mapped[str]
    doc_id: Mapped[int]
    prompt: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latency_s: Mapped[float | None]
    ttft_s: Mapped[float | None]
    tpot_s: Mapped[float | None]
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    token_source: Mapped[str | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="samples")

    def __repr__(self) -> str:
        return f"Sample(run_id={self.run_id!r}, task={self.task!r}, doc_id={self.doc_id!r})"
