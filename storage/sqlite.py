"""SQLite specifics: per-connection pragmas, file handling, transactional migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool, StaticPool

from gemmawatch.errors import DatabaseError
from gemmawatch.storage.models.base import json_dumps
from gemmawatch.storage.urls import WHERE


def is_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one per connection unless shared)."""
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def make_parent_dir(url: URL, masked: str) -> None:
    """Create the SQLite file's directory, or raise a one-line DatabaseError."""
    database = url.database or ""
    if database.startswith("file:"):  # a sqlite URI (uri=true): leave it to SQLite
        return
    parent = Path(database).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create the directory {parent} for the SQLite database {masked}: "
            f"{exc.strerror or exc}. Fix: pass a writable path ({WHERE})"
        ) from exc


def set_pragmas(dbapi_connection: Any, _record: Any, *, foreign_keys: bool = True) -> None:
    """Per-connection SQLite settings (a ``connect`` event hook; pragmas other than
    journal_mode are not stored in the file, so every connection needs them)."""
    cursor = dbapi_connection.cursor()
    try:
        # Concurrent writers (an eval and its telemetry thread) wait up to 5 s for
        # the write lock instead of failing at once with "database is locked".
        # First, because switching to WAL needs that lock too.
        cursor.execute("PRAGMA busy_timeout=5000")
        # Write-ahead log: readers (the dashboard) don't block the writer and vice versa.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Safe with WAL (a crash can lose the last commit, never corrupt) and far fewer fsyncs.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite ignores FOREIGN KEY constraints (and ON DELETE CASCADE) unless asked.
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    finally:
        cursor.close()
    # SQLite's lower() folds ASCII only; case-insensitive search ("École" vs
    # "école") should behave as on PostgreSQL.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def migration_engine(url: URL) -> Engine:
    """A SQLite engine whose transactions really are transactions, for migrating.

    Python's sqlite3 module only opens a transaction before INSERT/UPDATE/DELETE,
    so DDL would autocommit statement by statement and a failed migration would
    leave a half-built schema. Here the driver's handling is switched off and
    every transaction is an explicit ``BEGIN IMMEDIATE``, which also takes the
    write lock up front so two processes cannot migrate at once.
    """
    kwargs: dict[str, Any] = {"poolclass": NullPool, "json_serializer": json_dumps}
    if is_memory(url):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        # Foreign keys off while migrating: batch mode rebuilds tables by
        # drop-and-rename, which would otherwise cascade-delete child rows.
        # They are checked with PRAGMA foreign_key_check before committing.
        set_pragmas(dbapi_connection, record, foreign_keys=False)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
