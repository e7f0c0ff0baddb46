"""Engines on real databases: migrations, pragmas, one-line errors, transactions."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from gemmawatch.errors import DatabaseError, MissingDependencyError
from gemmawatch.storage import (
    current_revision,
    dispose_engines,
    get_engine,
    head_revision,
    session_scope,
    upgrade,
)
from gemmawatch.storage.queries import targets

ALL_TABLES = {
    "targets",
    "runs",
    "metrics",
    "samples",
    "telemetry",
    "alert_rules",
    "alerts",
    "load_requests",
    "telemetry_rollups",
    "telemetry_rollup_state",
    "alert_events",
    "notifications",
    "alembic_version",
}
#: The newest revision (bump it with every new migration).
HEAD = "0004"


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    assert upgrade(empty_db_url) == head_revision() == HEAD
    assert current_revision(empty_db_url) == HEAD
    assert _tables(empty_db_url) == ALL_TABLES
    # Upgrading again is a no-op, not an error.
    assert upgrade(empty_db_url) == HEAD


def test_first_get_engine_migrates_a_new_database(empty_db_url: str) -> None:
    engine = get_engine(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    with session_scope(engine) as s:
        target_id = targets.upsert_target(s, name="t", backend="transformers", model_id="m")
    assert target_id >= 1
    # Cached per URL: the same engine object comes back.
    assert get_engine(empty_db_url) is engine


def test_concurrent_upgrades_do_not_collide(empty_db_url: str) -> None:
    """Three processes migrate one new database at once; the lock (an advisory
    lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) lets exactly one do the work."""
    context = multiprocessing.get_context("fork")
    with context.Pool(3) as pool:
        results = pool.map(_upgrade_in_child, [empty_db_url] * 3)
    assert results == [HEAD] * 3
    assert current_revision(empty_db_url) == HEAD
    assert _tables(empty_db_url) == ALL_TABLES


def _upgrade_in_child(url: str) -> str:
    try:
        return upgrade(url)
    except Exception as exc:  # pickled back to the parent as a readable failure
        return f"{type(exc).__name__}: {exc}"


def test_failed_migration_leaves_the_database_untouched(empty_db_url: str) -> None:
    # A stray table named like one of ours makes the migration fail midway
    # (after targets, runs, ... were created in the same transaction).
    engine = create_engine(empty_db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE telemetry (x INTEGER)"))
    engine.dispose()
    with pytest.raises(DatabaseError) as info:
        upgrade(empty_db_url)
    assert "\n" not in str(info.value)
    assert _tables(empty_db_url) == {"telemetry"}
    assert current_revision(empty_db_url) is None


def test_newer_database_is_refused_with_a_fix(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="newer gemmawatch") as info:
        get_engine(empty_db_url)
    assert "\n" not in str(info.value)


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_sqlite_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "gw.db"
    get_engine(f"sqlite:///{path}")
    assert path.is_file()


def test_in_memory_sqlite_works_across_sessions() -> None:
    engine = get_engine("sqlite://")
    with session_scope(engine) as s:
        targets.upsert_target(s, name="mem", backend="b", model_id="m")
    with session_scope(engine) as s:
        assert [t["name"] for t in targets.list_targets(s)] == ["mem"]
    dispose_engines()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("notadb://x", "no SQLAlchemy dialect 'notadb'"),
        ("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x", "Cannot connect to the database"),
        ("sqlite:////proc/nope/x.db", "Cannot create the directory /proc/nope"),
        ("sqlite:////proc/x.db", "unable to open database file"),
        ("postgresql:/oops", "Invalid database URL"),
    ],
)
def test_bad_urls_raise_one_line_database_errors(url: str, expected: str) -> None:
    with pytest.raises(DatabaseError) as info:
        get_engine(url)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert "Fix:" in message and "GEMMAWATCH_DB" in message
    assert "hunter2" not in message


def test_refused_connection_names_the_masked_url() -> None:
    with pytest.raises(DatabaseError) as info:
        get_engine("postgresql://postgres:hunter2@127.0.0.1:1/x")
    assert str(info.value).startswith(
        "Cannot connect to the database postgresql+psycopg://postgres:***@127.0.0.1:1/x: "
    )
    assert "Fix: start the server or pass a different --db / GEMMAWATCH_DB" in str(info.value)


def test_missing_driver_gives_an_install_hint() -> None:
    with pytest.raises(MissingDependencyError) as info:
        get_engine("mysql+mysqldb://u@127.0.0.1/x")
    assert "pip install" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.postgres
def test_missing_postgres_database_suggests_creating_it(postgres_url: str) -> None:
    with pytest.raises(DatabaseError, match=r"does not exist.*Fix: create it"):
        get_engine(postgres_url.rsplit("/", 1)[0] + "/gemmawatch_no_such_db")


def test_session_scope_rolls_back_on_error(db_url: str) -> None:
    engine = get_engine(db_url)
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as s:
        targets.upsert_target(s, name="ghost", backend="b", model_id="m")
        raise RuntimeError("boom")
    with session_scope(engine) as s:
        assert targets.list_targets(s) == []
    with session_scope(engine) as s:
        targets.upsert_target(s, name="kept", backend="b", model_id="m")
    with session_scope(engine) as s:
        assert [t["name"] for t in targets.list_targets(s)] == ["kept"]
