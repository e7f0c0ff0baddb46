"""Models and migrations must describe the same schema, on every dialect."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from gemmawatch.storage import get_engine, upgrade
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
    assert "uq_alerts_rule_id_target_id_firing" in indexes
    assert foreign_keys["fk_samples_run_id_runs"]["options"].get("ondelete") == "CASCADE"
    assert checks == {"ck_runs_status"}


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    assert upgrade(empty_db_url) == "0001"
