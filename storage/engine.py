"""Engines and sessions: the one way to reach the database.

``get_engine()`` resolves the URL (argument > ``GEMMAWATCH_DB`` > a SQLite
file in the user data dir), turns every connection problem into a one-line
:class:`~gemmawatch.errors.DatabaseError`, and brings a new or old database to
the latest schema before returning. ``upgrade``/``current_revision`` serve
``gemmawatch db upgrade``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from gemmawatch.errors import DatabaseError, MissingDependencyError, one_line
from gemmawatch.storage import sqlite
from gemmawatch.storage.migrate import alembic_config, head_revision, revision_of, upgrade_engine
from gemmawatch.storage.models.base import json_dumps
from gemmawatch.storage.urls import ENV_VAR, WHERE, database_error, default_url, mask_url, resolve_url

__all__ = [
    "ENV_VAR",
    "alembic_config",
    "current_revision",
    "default_url",
    "dispose_engines",
    "get_engine",
    "head_revision",
    "json_dumps",
    "mask_url",
    "resolve_url",
    "session_scope",
    "upgrade",
]

#: Install hints for missing DBAPI drivers, by driver name.
_DRIVER_HINTS = {
    "postgresql+psycopg": "pip install 'gemmawatch[postgres]'",
    "postgresql+psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// with "
    "pip install 'gemmawatch[postgres]'",
}

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (see :func:`resolve_url`), created once per URL and process.

    On first use the database is created if needed (SQLite), checked to be
    reachable and upgraded to the latest schema.

    Raises:
        DatabaseError: invalid URL, unreachable server, unwritable file, or a
            database created by a newer gemmawatch.
        MissingDependencyError: the URL's driver is not installed.
    """
    resolved = resolve_url(url)
    with _engines_lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _connect(resolved)
            try:
                if revision_of(engine) != head_revision():
                    upgrade_engine(engine)
            except BaseException:
                engine.dispose()
                raise
            _engines[resolved] = engine
    return engine


def dispose_engines() -> None:
    """Close every cached engine's connections and forget them (tests, forked workers)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed if the block succeeds, rolled back if it raises.

    Objects stay usable after the commit (``expire_on_commit=False``), so a
    caller can read ids and attributes without another round trip.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def upgrade(url: str | None = None) -> str:
    """Migrate the database at ``url`` to the latest schema; returns the head revision id."""
    resolved = resolve_url(url)
    engine = _engines.get(resolved)
    if engine is not None:
        upgrade_engine(engine)
        return head_revision()
    engine = _connect(resolved)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()
    return head_revision()


def current_revision(url: str | None = None) -> str | None:
    """The schema revision the database at ``url`` is at (None: never migrated). Migrates nothing."""
    resolved = resolve_url(url)
    engine = _engines.get(resolved)
    if engine is not None:
        return revision_of(engine)
    engine = _connect(resolved)
    try:
        return revision_of(engine)
    finally:
        engine.dispose()


def _connect(url: str) -> Engine:
    """Create an engine for ``url`` and prove it can connect, or raise a one-line error."""
    masked = mask_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"Invalid database URL {masked}: {one_line(str(exc))}. "
            f"Fix: use sqlite:///path/to/gemmawatch.db or postgresql://user@host/dbname ({WHERE})"
        ) from exc
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"json_serializer": json_dumps}
    if backend == "sqlite":
        if sqlite.is_memory(parsed):
            # Every new connection to ":memory:" is a new empty database: share one.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            sqlite.make_parent_dir(parsed, masked)
    else:
        # Drop connections a restarted server has closed instead of failing a query.
        kwargs["pool_pre_ping"] = True
        if parsed.drivername.partition("+")[2] in ("psycopg", "psycopg2") and "connect_timeout" not in parsed.query:
            # libpq otherwise waits for the OS TCP timeout (minutes) on a dead host.
            kwargs["connect_args"] = {"connect_timeout": 10}
    engine = _create(parsed, masked, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", sqlite.set_pragmas)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        raise database_error(masked, exc) from exc
    return engine


def _create(url: URL, masked: str, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except NoSuchModuleError as exc:
        raise DatabaseError(
            f"Unsupported database URL {masked}: no SQLAlchemy dialect '{url.drivername}'. "
            f"Fix: use sqlite:///path/to/gemmawatch.db or postgresql://user@host/dbname ({WHERE})"
        ) from exc
    except ImportError as exc:
        driver = exc.name or url.drivername.partition("+")[2] or url.drivername
        hint = _DRIVER_HINTS.get(url.drivername, f"pip install {driver}")
        raise MissingDependencyError(
            f"The database URL {masked} needs the driver '{driver}', which is not installed. Fix: {hint}"
        ) from exc
    except ArgumentError as exc:
        raise DatabaseError(
            f"Invalid database URL {masked}: {one_line(str(exc))}. Fix: correct the URL ({WHERE})"
        ) from exc
