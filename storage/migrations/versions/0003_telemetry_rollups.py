"""Telemetry retention: 1-minute/1-hour/1-day rollups, their bookkeeping row, time-range indexes.

Written by hand and frozen like 0001: it must not import the models.
tests/integration/test_storage_migrations.py checks that models and
migrations describe the same schema.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in gemmawatch.storage.models.base.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=False)


def upgrade() -> None:
    """Create ``telemetry_rollups`` and ``telemetry_rollup_state``; index ``telemetry`` by (metric, ts) and ts."""
    op.create_table(
        "telemetry_rollups",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("resolution", sa.String(), nullable=False),
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("labels_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("run_key", sa.Integer(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("avg", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_rollups")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_telemetry_rollups_run_id_runs"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("resolution IN ('1m', '1h', '1d')", name=op.f("ck_telemetry_rollups_resolution")),
        sa.UniqueConstraint(
            "resolution",
            "bucket_start",
            "host",
            "source",
            "metric",
            "labels_key",
            "run_key",
            name="uq_telemetry_rollups_series_bucket",
        ),
    )
    # Covering index of chart queries: (metric, resolution, bucket_start) is the search key.
    op.create_index(
        "ix_telemetry_rollups_chart",
        "telemetry_rollups",
        [
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
        ],
    )
    op.create_index(
        op.f("ix_telemetry_rollups_run_id_resolution_bucket_start"),
        "telemetry_rollups",
        ["run_id", "resolution", "bucket_start"],
    )
    op.create_table(
        "telemetry_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rolled_until", TIMESTAMP, nullable=True),
        sa.Column("raw_pruned_until", TIMESTAMP, nullable=True),
        sa.Column("minute_pruned_until", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_rollup_state")),
        sa.CheckConstraint("id = 1", name=op.f("ck_telemetry_rollup_state_single_row")),
    )
    op.create_index(op.f("ix_telemetry_metric_ts"), "telemetry", ["metric", "ts"])
    op.create_index(op.f("ix_telemetry_ts"), "telemetry", ["ts"])


def downgrade() -> None:
    """Drop the rollups (destroys all downsampled telemetry) and the two time-range indexes."""
    op.drop_index(op.f("ix_telemetry_ts"), table_name="telemetry")
    op.drop_index(op.f("ix_telemetry_metric_ts"), table_name="telemetry")
    op.drop_table("telemetry_rollup_state")
    op.drop_index(op.f("ix_telemetry_rollups_run_id_resolution_bucket_start"), table_name="telemetry_rollups")
    op.drop_index("ix_telemetry_rollups_chart", table_name="telemetry_rollups")
    op.drop_table("telemetry_rollups")
