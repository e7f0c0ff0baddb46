"""Models and migrations must describe the same schema, on every dialect."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from gemmawatch.storage import get_engine, head_revision, upgrade
from gemmawatch.storage.engine import alembic_config
from gemmawatch.storage.models import Base


def test_models_and_migrations_do_not_drift(db_url: str) -> None:
    engine = get_engine(db_url)  # migrated to head
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": Base.metadata})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_migrated_schema_has_the_named_constraints_and_indexes(db_url: str) -> None:
    engine = get_engine(db_url)
    with engine.connect() as conn:
        inspector = inspect(conn)
        indexes = {ix["name"] for ix in inspector.get_indexes("alerts")}
        foreign_keys = {fk["name"]: fk for fk in inspector.get_foreign_keys("samples")}
        checks = {ck["name"] for ck in inspector.get_check_constraints("runs")}
        load_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("load_requests")}
        load_keys = {fk["name"]: fk for fk in inspector.get_foreign_keys("load_requests")}
    assert "uq_alerts_rule_id_series_open" in indexes
    assert foreign_keys["fk_samples_run_id_runs"]["options"].get("ondelete") == "CASCADE"
    assert checks == {"ck_runs_status"}
    assert load_indexes == {"ix_load_requests_run_id_step_seq": ["run_id", "step", "seq"]}
    assert load_keys["fk_load_requests_run_id_runs"]["options"].get("ondelete") == "CASCADE"


def _downgrade(url: str, revision: str) -> set[str]:
    """Downgrade ``url`` to ``revision``; returns the tables left."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


#: (revision, the one before it, the tables it creates); append one line per new migration.
REVISIONS = [
    ("0002", "0001", {"load_requests"}),
    ("0003", "0002", {"telemetry_rollups", "telemetry_rollup_state"}),
    ("0004", "0003", {"alert_events", "notifications"}),
]
HEAD = REVISIONS[-1][0]


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert _downgrade(empty_db_url, "base") == {"alembic_version"}
    assert upgrade(empty_db_url) == head_revision() == HEAD


def test_each_revision_downgrades_only_its_own_tables(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    head_tables = _downgrade(empty_db_url, HEAD)  # a no-op: the tables at head
    for revision, previous, created in reversed(REVISIONS):
        before = _downgrade(empty_db_url, previous)
        assert before == head_tables - created, f"downgrading {revision} -> {previous}"
        head_tables = before
    assert {"runs", "samples", "telemetry"} <= head_tables
    assert upgrade(empty_db_url) == HEAD


def test_telemetry_rollup_migration_indexes_and_round_trip(empty_db_url: str) -> None:
    """0003 adds the rollup tables and two time-range indexes on telemetry; its downgrade removes exactly those."""

    def telemetry_indexes() -> dict[str, list[str]]:
        engine = create_engine(empty_db_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("telemetry")}
        finally:
            engine.dispose()

    upgrade(empty_db_url)
    assert telemetry_indexes() == {
        "ix_telemetry_run_id_metric_ts": ["run_id", "metric", "ts"],
        "ix_telemetry_metric_ts": ["metric", "ts"],
        "ix_telemetry_ts": ["ts"],
    }
    engine = create_engine(empty_db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            rollup_indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("telemetry_rollups")}
            uniques = {uq["name"]: uq["column_names"] for uq in inspector.get_unique_constraints("telemetry_rollups")}
            keys = {fk["name"]: fk for fk in inspector.get_foreign_keys("telemetry_rollups")}
    finally:
        engine.dispose()
    assert rollup_indexes["ix_telemetry_rollups_chart"][:3] == ["metric", "resolution", "bucket_start"]
    assert uniques["uq_telemetry_rollups_series_bucket"] == [
        "resolution",
        "bucket_start",
        "host",
        "source",
        "metric",
        "labels_key",
        "run_key",
    ]
    assert keys["fk_telemetry_rollups_run_id_runs"]["options"].get("ondelete") == "CASCADE"
    tables = _downgrade(empty_db_url, "0002")
    assert not {"telemetry_rollups", "telemetry_rollup_state"} & tables
    assert telemetry_indexes() == {"ix_telemetry_run_id_metric_ts": ["run_id", "metric", "ts"]}
    assert upgrade(empty_db_url) == HEAD
