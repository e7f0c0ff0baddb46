"""Alembic, driven from code: config, head revision, and the locked one-transaction upgrade."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from gemmawatch.errors import DatabaseError, one_line
from gemmawatch.storage import sqlite
from gemmawatch.storage.urls import WHERE, database_error, mask_url, resolve_url

#: Key of the PostgreSQL advisory lock taken while migrating (any constant bigint).
_MIGRATION_LOCK_KEY = 0x67656D6D61  # "gemma"
# alembic keeps the running migration in module globals (alembic.context/op),
# so two threads must never migrate at once, even different databases.
_alembic_lock = threading.RLock()


def head_revision() -> str:
    """The newest schema revision this version of gemmawatch ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - only if versions/ were lost from the install
        raise DatabaseError("No schema migrations found. Fix: reinstall gemmawatch")
    return head


def alembic_config(url: str | None = None) -> Config:
    """An alembic ``Config`` pointing at the bundled migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        # "%" must be doubled for the ini-style interpolation alembic applies.
        config.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return config


def revision_of(engine: Engine) -> str | None:
    """The revision stamped in the database (None: never migrated)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise database_error(mask_url(engine.url), exc) from exc


def upgrade_engine(engine: Engine) -> None:
    """Run all pending migrations in one transaction, serialised across processes."""
    masked = mask_url(engine.url)
    config = alembic_config()
    is_sqlite = engine.dialect.name == "sqlite"
    if is_sqlite and sqlite.is_memory(engine.url):
        migrator = engine  # one shared connection: the app engine must see the tables
    elif is_sqlite:
        migrator = sqlite.migration_engine(engine.url)
    else:
        migrator = engine
    try:
        with _alembic_lock, migrator.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Transaction-scoped: released by the commit/rollback, even if we crash.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if is_sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise DatabaseError(
                        f"Migrating {masked} would break {len(broken)} foreign key(s) "
                        f"(first: {tuple(broken[0])}); nothing was changed. Fix: report this as a bug"
                    )
    except CommandError as exc:
        raise DatabaseError(
            f"Cannot migrate the database {masked}: {one_line(str(exc))}. "
            f"Fix: it was probably created by a newer gemmawatch; upgrade gemmawatch or pass a different "
            f"{WHERE}"
        ) from exc
    except DBAPIError as exc:
        raise database_error(masked, exc, doing="migrate") from exc
    finally:
        if migrator is not engine:
            migrator.dispose()
            # SQLite connections opened before the migration keep a stale schema
            # for PRAGMA-based introspection (index_list...): start fresh ones.
            engine.dispose()
