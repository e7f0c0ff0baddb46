"""Downsampled telemetry: the ``telemetry_rollups`` table and the rollup bookkeeping row.

Raw readings (:class:`~gemmawatch.storage.models.telemetry.TelemetrySample`)
are aggregated into 1-minute and 1-hour buckets per series (host, source,
metric, labels, run), and the 1-hour buckets into 1-day ones, so that a chart
over months reads about one row per series and day instead of millions.
``gemmawatch.storage.queries.telemetry.rollup_telemetry`` writes them;
``telemetry_series`` reads the resolution a time range needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gemmawatch.storage.models.base import Base, BigIntId

#: Bucket widths of :attr:`TelemetryRollup.resolution`, in seconds.
ROLLUP_RESOLUTIONS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}

#: Columns of the chart index: the search key, then every column a chart query filters on or reads.
CHART_INDEX_COLUMNS = (
    "metric",
    "resolution",
    "bucket_start",
    "host",
    "source",
    "run_id",
    "labels_key",
    "min",
    "max",
    "sum",
    "count",
)


class TelemetryRollup(Base):
    """min/avg/max/count/sum of one series' readings within one time bucket.

    ``bucket_start`` is the bucket's first instant (UTC, aligned to the minute,
    hour or day: days start at 00:00 UTC); ``avg`` is always ``sum / count``,
    so buckets merge exactly. A ``1d`` row is the sum of the day's ``1h`` rows
    of its series (recomputed from them whenever they change).
    ``labels_key`` is the labels as canonical JSON text (keys sorted), used
    for grouping and uniqueness; ``run_key`` is ``COALESCE(run_id, 0)``, because
    a NULL ``run_id`` would make every row distinct to a unique constraint
    (SQLite and PostgreSQL < 15 have no ``NULLS NOT DISTINCT``).
    """

    __tablename__ = "telemetry_rollups"
    __table_args__ = (
        CheckConstraint("resolution IN ('1m', '1h', '1d')", name="resolution"),
        # One row per series and bucket; leading (resolution, bucket_start) also
        # finds the newest rolled bucket and the buckets to prune.
        UniqueConstraint(
            "resolution",
            "bucket_start",
            "host",
            "source",
            "metric",
            "labels_key",
            "run_key",
            name="uq_telemetry_rollups_series_bucket",
        ),
        # Charts read one metric at one resolution over a time range. Covering: the
        # filters (host, source, run, labels_key) and the aggregates are in the index,
        # so a chart reads a few contiguous index pages instead of one row per page.
        Index("ix_telemetry_rollups_chart", *CHART_INDEX_COLUMNS),
        # A run's rollups: its telemetry once the raw readings are pruned, and ON DELETE CASCADE.
        Index("ix_telemetry_rollups_run_id_resolution_bucket_start", "run_id", "resolution", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    resolution: Mapped[str]
    bucket_start: Mapped[datetime]
    host: Mapped[str]
    source: Mapped[str]
    metric: Mapped[str]
    unit: Mapped[str]
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels_key: Mapped[str]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    run_key: Mapped[int]
    min: Mapped[float]
    avg: Mapped[float]
    max: Mapped[float]
    count: Mapped[int]
    sum: Mapped[float]

    def __repr__(self) -> str:
        return (
            f"TelemetryRollup(resolution={self.resolution!r}, bucket_start={self.bucket_start!r}, "
            f"metric={self.metric!r}, count={self.count!r})"
        )


class TelemetryRollupState(Base):
    """The single bookkeeping row of the rollup (``id`` is always 1).

    * ``rolled_until``: raw readings with ``ts`` before it are in the rollups
      (readings that arrive later than that are added when their hour is pruned);
    * ``raw_pruned_until``: raw readings before it were deleted (hour-aligned);
    * ``minute_pruned_until``: 1-minute rollups before it were deleted (1-hour and 1-day ones are kept).

    NULL means "never": nothing rolled or pruned yet.
    """

    __tablename__ = "telemetry_rollup_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rolled_until: Mapped[datetime | None]
    raw_pruned_until: Mapped[datetime | None]
    minute_pruned_until: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"TelemetryRollupState(rolled_until={self.rolled_until!r}, raw_pruned_until={self.raw_pruned_until!r})"
