"""Alerts rework: rule kinds and telemetry windows, pending state, series, silences, events, notifications.

* ``alert_rules``: data_source, target, labels, group_by, aggregation, window_s,
  for_s, notify, baseline, alpha, higher_is_better; CHECKs on kind and data_source.
* ``alerts``: series, started_at, silenced_until; ``fired_at`` nullable (a
  pending alert has not fired); states pending/firing/resolved; one unresolved
  alert per (rule, series) instead of one firing alert per (rule, target).
  Existing alerts get ``series = 'target=<name>'`` and ``started_at = fired_at``.
* New tables ``alert_events`` and ``notifications``.

Written by hand and frozen like 0001: it must not import the models. SQLite
cannot alter constraints, so the two tables are rebuilt in batch mode from the
frozen definitions below (``copy_from``), never from reflection, which could
drop CHECK constraints silently. Foreign keys are off while migrating SQLite
(gemmawatch.storage.sqlite.migration_engine), so the rebuilds cascade nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-13
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the portable types in gemmawatch.storage.models.base.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=False)

OLD_STATES = "state IN ('firing', 'resolved')"
NEW_STATES = "state IN ('pending', 'firing', 'resolved')"
KINDS = "kind IN ('threshold', 'regression')"
DATA_SOURCES = "data_source IN ('run', 'telemetry')"


def _rule_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("data_source", sa.String(), nullable=False, server_default="run"),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("labels", JSON, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("group_by", JSON, nullable=True),
        sa.Column("aggregation", sa.String(), nullable=True),
        sa.Column("window_s", sa.Double(), nullable=True),
        sa.Column("for_s", sa.Double(), nullable=False, server_default="0"),
        sa.Column("notify", JSON, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("baseline", sa.String(), nullable=True),
        sa.Column("alpha", sa.Double(), nullable=True),
        sa.Column("higher_is_better", sa.Boolean(), nullable=True),
    ]


def _rules_table(new: bool) -> sa.Table:
    """``alert_rules`` as 0001 left it (``new=False``) or as this revision leaves it."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("task", sa.String(), nullable=True),
        sa.Column("comparator", sa.String(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    ]
    constraints: list[sa.schema.SchemaItem] = [
        sa.PrimaryKeyConstraint("id", name="pk_alert_rules"),
        sa.UniqueConstraint("name", name="uq_alert_rules_name"),
        sa.CheckConstraint("comparator IN ('<', '<=', '>', '>=')", name="ck_alert_rules_comparator"),
    ]
    if new:
        columns += _rule_columns()
        constraints += [
            sa.CheckConstraint(KINDS, name="ck_alert_rules_kind"),
            sa.CheckConstraint(DATA_SOURCES, name="ck_alert_rules_data_source"),
        ]
    return sa.Table("alert_rules", sa.MetaData(), *columns, *constraints)


def _alerts_table(new: bool, *, started_nullable: bool = False) -> sa.Table:
    """``alerts`` with the three new columns, under the old (``new=False``) or the new constraints.

    Indexes are the plain ones; the partial unique index is dropped before and
    created after each rebuild.
    """
    meta = sa.MetaData()
    sa.Table("alert_rules", meta, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("runs", meta, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table("targets", meta, sa.Column("id", sa.Integer(), primary_key=True))
    table = sa.Table(
        "alerts",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fired_at", TIMESTAMP, nullable=new),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("series", sa.String(), nullable=False, server_default=""),
        sa.Column("started_at", TIMESTAMP, nullable=started_nullable),
        sa.Column("silenced_until", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name="fk_alerts_rule_id_alert_rules", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_alerts_run_id_runs", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], name="fk_alerts_target_id_targets", ondelete="SET NULL"
        ),
        sa.CheckConstraint(NEW_STATES if new else OLD_STATES, name="ck_alerts_state"),
    )
    sa.Index("ix_alerts_run_id", table.c.run_id)
    sa.Index("ix_alerts_target_id", table.c.target_id)
    sa.Index("ix_alerts_fired_at", table.c.fired_at)
    return table


def upgrade() -> None:
    """Extend rules and alerts; create ``alert_events`` and ``notifications``."""
    with op.batch_alter_table("alert_rules", copy_from=_rules_table(new=False)) as batch:
        for column in _rule_columns():
            batch.add_column(column)
        batch.create_check_constraint(op.f("ck_alert_rules_kind"), sa.text(KINDS))
        batch.create_check_constraint(op.f("ck_alert_rules_data_source"), sa.text(DATA_SOURCES))

    op.add_column("alerts", sa.Column("series", sa.String(), nullable=False, server_default=""))
    op.add_column("alerts", sa.Column("started_at", TIMESTAMP, nullable=True))
    op.add_column("alerts", sa.Column("silenced_until", TIMESTAMP, nullable=True))
    op.execute("UPDATE alerts SET started_at = fired_at")
    op.execute(
        "UPDATE alerts SET series = COALESCE("
        "(SELECT 'target=' || targets.name FROM targets WHERE targets.id = alerts.target_id), '')"
    )
    op.drop_index(op.f("uq_alerts_rule_id_target_id_firing"), table_name="alerts")
    with op.batch_alter_table("alerts", copy_from=_alerts_table(new=False, started_nullable=True)) as batch:
        batch.alter_column("started_at", existing_type=TIMESTAMP, nullable=False)
        batch.alter_column("fired_at", existing_type=TIMESTAMP, nullable=True)
        batch.drop_constraint(op.f("ck_alerts_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alerts_state"), sa.text(NEW_STATES))
    # One unresolved alert per (rule, series); resolved ones are history.
    op.create_index(
        op.f("uq_alerts_rule_id_series_open"),
        "alerts",
        ["rule_id", "series"],
        unique=True,
        sqlite_where=sa.text("state != 'resolved'"),
        postgresql_where=sa.text("state != 'resolved'"),
    )
    op.create_index(op.f("ix_alerts_started_at"), "alerts", ["started_at"])

    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "to_state IN ('pending', 'firing', 'resolved', 'acknowledged', 'silenced')",
            name=op.f("ck_alert_events_to_state"),
        ),
    )
    op.create_index(op.f("ix_alert_events_alert_id_at"), "alert_events", ["alert_id", "at"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("transition", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_notifications_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.CheckConstraint("transition IN ('firing', 'resolved')", name=op.f("ck_notifications_transition")),
    )
    op.create_index(op.f("ix_notifications_alert_id"), "notifications", ["alert_id"])


def downgrade() -> None:
    """Back to 0003's alert schema.

    Destroys what it cannot represent: alert events and notifications, pending
    alerts, telemetry-window and regression rules with their alerts. Of several
    firing alerts of one rule and target (different series), the newest stays
    firing and the others are resolved.
    """
    op.drop_index(op.f("ix_notifications_alert_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_alert_events_alert_id_at"), table_name="alert_events")
    op.drop_table("alert_events")

    newer_rules = "SELECT id FROM alert_rules WHERE kind != 'threshold' OR data_source != 'run'"
    op.execute(f"DELETE FROM alerts WHERE rule_id IN ({newer_rules})")
    op.execute("DELETE FROM alert_rules WHERE kind != 'threshold' OR data_source != 'run'")
    op.execute("DELETE FROM alerts WHERE state = 'pending'")
    op.execute("UPDATE alerts SET fired_at = started_at WHERE fired_at IS NULL")
    now = "CURRENT_TIMESTAMP" if op.get_bind().dialect.name == "sqlite" else "(now() AT TIME ZONE 'UTC')"
    op.execute(
        f"UPDATE alerts SET state = 'resolved', resolved_at = {now} WHERE state = 'firing' AND id NOT IN "
        "(SELECT MAX(id) FROM alerts WHERE state = 'firing' GROUP BY rule_id, target_id)"
    )

    op.drop_index(op.f("ix_alerts_started_at"), table_name="alerts")
    op.drop_index(op.f("uq_alerts_rule_id_series_open"), table_name="alerts")
    with op.batch_alter_table("alerts", copy_from=_alerts_table(new=True)) as batch:
        batch.drop_constraint(op.f("ck_alerts_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alerts_state"), sa.text(OLD_STATES))
        batch.alter_column("fired_at", existing_type=TIMESTAMP, nullable=False)
        batch.drop_column("silenced_until")
        batch.drop_column("started_at")
        batch.drop_column("series")
    op.create_index(
        op.f("uq_alerts_rule_id_target_id_firing"),
        "alerts",
        ["rule_id", "target_id"],
        unique=True,
        sqlite_where=sa.text("state = 'firing'"),
        postgresql_where=sa.text("state = 'firing'"),
    )

    with op.batch_alter_table("alert_rules", copy_from=_rules_table(new=True)) as batch:
        batch.drop_constraint(op.f("ck_alert_rules_data_source"), type_="check")
        batch.drop_constraint(op.f("ck_alert_rules_kind"), type_="check")
        for column in reversed(_rule_columns()):
            batch.drop_column(column.name)
