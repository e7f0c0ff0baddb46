"""Shared pytest fixtures. Each section belongs to one area; append, don't reorder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

# --------------------------------------------------------------------------- #
# Databases (owner: storage)
#
#   sqlite_url          a fresh SQLite file per test
#   postgres_url        a database created for this test session on the local
#                       server (dropped at the end); tables are emptied before
#                       each test that uses db_url
#   db_url              parametrized over both ("postgres" is marked postgres)
#   empty_db_url        a database no test has touched yet (both dialects)
#
# PostgreSQL unreachable -> the test FAILS, unless GEMMAWATCH_SKIP_POSTGRES=1.
# GEMMAWATCH_TEST_POSTGRES overrides the server URL (its database is only used
# to run CREATE/DROP DATABASE).
# --------------------------------------------------------------------------- #

POSTGRES_SERVER_URL = os.environ.get("GEMMAWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a not-yet-created SQLite file in the test's tmp dir."""
    return f"sqlite:///{tmp_path / 'gemmawatch.db'}"


@pytest.fixture(scope="session")
def postgres_database_factory() -> Iterator[Callable[[], str]]:
    """A callable creating a new uniquely named PostgreSQL database (URL returned).

    Every database it created is dropped when the test session ends.
    """
    admin = create_engine(POSTGRES_SERVER_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("GEMMAWATCH_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL unreachable and GEMMAWATCH_SKIP_POSTGRES=1: {exc.__class__.__name__}")
        where = make_url(POSTGRES_SERVER_URL).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL test server {where} is unreachable ({' '.join(str(exc).split())[:300]}). "
            "Start it, point GEMMAWATCH_TEST_POSTGRES at another server, "
            "or set GEMMAWATCH_SKIP_POSTGRES=1 to skip PostgreSQL tests.",
            pytrace=False,
        )
    created: list[str] = []
    session_tag = uuid.uuid4().hex[:8]

    def create() -> str:
        name = f"gemmawatch_test_{session_tag}_{len(created)}"
        with admin.connect() as conn:
            # CREATE DATABASE cannot run inside a transaction: hence AUTOCOMMIT.
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)

    yield create

    from gemmawatch.storage.engine import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        for name in created:
            # FORCE: engines other tests created may still hold connections.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres_database_factory: Callable[[], str]) -> str:
    """URL of the PostgreSQL database shared by this test session."""
    return postgres_database_factory()


def _empty_postgres_tables(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            if tables:
                names = ", ".join(f'"{t}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A clean database URL, once per dialect: SQLite file or (emptied) PostgreSQL database."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("postgres_url")
    _empty_postgres_tables(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """A database that has never been migrated (no tables at all), once per dialect."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    factory: Callable[[], str] = request.getfixturevalue("postgres_database_factory")
    return factory()


# --------------------------------------------------------------------------- #
# Models (owner: model engineer): gemma_backend, the fp32 built-in target loaded
# once per session. Tests using it carry @pytest.mark.model.
# --------------------------------------------------------------------------- #
from model_fixtures import *  # noqa: E402, F403

# --------------------------------------------------------------------------- #
# Isolation (owner: lead)
# --------------------------------------------------------------------------- #


@pytest.fixture(autouse=True)
def _isolated_default_database(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the user's real default database or config file.

    Tests that want a database pass a URL explicitly; code that falls back to
    the default gets a throw-away SQLite file instead of ~/.local/share/gemmawatch.
    """
    default = tmp_path_factory.getbasetemp() / "default-gemmawatch.db"
    monkeypatch.setenv("GEMMAWATCH_DB", f"sqlite:///{default}")
    monkeypatch.delenv("GEMMAWATCH_CONFIG", raising=False)
