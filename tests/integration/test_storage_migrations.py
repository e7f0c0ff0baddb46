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
    assert "uq_alerts_rule_id_target_id_firing" in indexes
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


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert _downgrade(empty_db_url, "base") == {"alembic_version"}
    assert upgrade(empty_db_url) == head_revision() == "0002"


def test_each_revision_downgrades_only_its_own_tables(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    before_load = _downgrade(empty_db_url, "0001")
    assert "load_requests" not in before_load and {"runs", "samples", "telemetry"} <= before_load
    assert upgrade(empty_db_url) == "0002"
