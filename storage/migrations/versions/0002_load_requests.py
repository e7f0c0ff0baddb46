"""Load tests: the ``load_requests`` table (raw timings of every request).

Written by hand and frozen like 0001: it must not import the models.
tests/integration/test_storage_migrations.py checks that models and
migrations describe the same schema.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in gemmawatch.storage.models.base.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``load_requests``: one row per request of a ``bench load`` run."""
    op.create_table(
        "load_requests",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("scheduled_s", sa.Double(), nullable=True),
        sa.Column("sent_s", sa.Double(), nullable=False),
        sa.Column("first_chunk_s", sa.Double(), nullable=True),
        sa.Column("end_s", sa.Double(), nullable=True),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("chunk_s", JSON, nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("token_source", sa.String(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_requests")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_load_requests_run_id_runs"), ondelete="CASCADE"),
        sa.CheckConstraint("phase IN ('warmup', 'measure', 'cooldown')", name=op.f("ck_load_requests_phase")),
    )
    op.create_index(op.f("ix_load_requests_run_id_step_seq"), "load_requests", ["run_id", "step", "seq"])


def downgrade() -> None:
    """Drop ``load_requests`` (destroys the stored request timings of every load test)."""
    op.drop_table("load_requests")
