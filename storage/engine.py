"""Engines, sessions and schema migrations.

``get_engine()`` is the one way to reach the database: it resolves the URL
(argument > ``GEMMAWATCH_DB`` > a SQLite file in the user data dir), turns
every connection problem into a one-line :class:`~gemmawatch.errors.DatabaseError`,
and brings a new or old database to the latest schema before returning.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, StaticPool

from gemmawatch.errors import DatabaseError, MissingDependencyError, one_line

#: Environment variable holding the database URL.
ENV_VAR = "GEMMAWATCH_DB"
#: Where to set the URL, for the "Fix:" half of error messages.
_WHERE = "--db / GEMMAWATCH_DB"
#: Key of the PostgreSQL advisory lock taken while migrating (any constant bigint).
_MIGRATION_LOCK_KEY = 0x67656D6D61  # "gemma"
#: Drivers SQLAlchemy should use when a URL names only the database kind.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
#: Install hints for missing DBAPI drivers, by backend name.
_DRIVER_HINTS = {
    "postgresql+psycopg": "pip install 'gemmawatch[postgres]'",
    "postgresql+psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// with "
    "pip install 'gemmawatch[postgres]'",
}

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
# alembic keeps the running migration in module globals (alembic.context/op),
# so two threads must never migrate at once, even different databases.
_alembic_lock = threading.RLock()


def default_url() -> str:
    """The SQLite file used when neither an argument nor ``GEMMAWATCH_DB`` gives a URL."""
    path = Path(platformdirs.user_data_dir("gemmawatch")) / "gemmawatch.db"
    return f"sqlite:///{path}"


def resolve_url(url: str | None = None) -> str:
    """Pick the database URL: explicit ``url`` > ``$GEMMAWATCH_DB`` > :func:`default_url`.

    A plain file path (``runs.db``) becomes a SQLite URL, ``~`` is expanded in
    SQLite paths, and ``postgresql://`` gets the installed psycopg 3 driver.
    The string is not validated here; :func:`get_engine` does that.
    """
    chosen = (url or "").strip() or os.environ.get(ENV_VAR, "").strip() or default_url()
    if "://" not in chosen and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", chosen):
        return f"sqlite:///{Path(chosen).expanduser()}"
    scheme, sep, rest = chosen.partition("://")
    scheme = _DEFAULT_DRIVERS.get(scheme, scheme)
    if scheme == "sqlite" and rest.startswith("/~"):
        rest = "/" + str(Path(rest[1:]).expanduser())
    return f"{scheme}{sep}{rest}"


def mask_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", str(url))


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
                if _current_revision(engine) != head_revision():
                    _upgrade(engine)
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
        _upgrade(engine)
        return head_revision()
    engine = _connect(resolved)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()
    return head_revision()


def current_revision(url: str | None = None) -> str | None:
    """The schema revision the database at ``url`` is at (None: never migrated). Migrates nothing."""
    resolved = resolve_url(url)
    engine = _engines.get(resolved)
    if engine is not None:
        return _current_revision(engine)
    engine = _connect(resolved)
    try:
        return _current_revision(engine)
    finally:
        engine.dispose()


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


def json_dumps(value: Any) -> str:
    """Serialise JSON columns identically on every dialect.

    NaN and infinities become ``null`` (PostgreSQL's JSONB rejects them, SQLite
    would store invalid JSON) and unknown objects (paths, datetimes) become strings.
    """
    return json.dumps(_finite(value), default=str, allow_nan=False, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _connect(url: str) -> Engine:
    """Create an engine for ``url`` and prove it can connect, or raise a one-line error."""
    masked = mask_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"Invalid database URL {masked}: {one_line(str(exc))}. "
            f"Fix: use sqlite:///path/to/gemmawatch.db or postgresql://user@host/dbname ({_WHERE})"
        ) from exc
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"json_serializer": json_dumps}
    if backend == "sqlite":
        if _sqlite_is_memory(parsed):
            # Every new connection to ":memory:" is a new empty database: share one.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            _make_sqlite_dir(parsed, masked)
    else:
        # Drop connections a restarted server has closed instead of failing a query.
        kwargs["pool_pre_ping"] = True
    engine = _create(parsed, masked, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        raise _connect_error(masked, exc) from exc
    return engine


def _create(url: URL, masked: str, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except NoSuchModuleError as exc:
        raise DatabaseError(
            f"Unsupported database URL {masked}: no SQLAlchemy dialect '{url.drivername}'. "
            f"Fix: use sqlite:///path/to/gemmawatch.db or postgresql://user@host/dbname ({_WHERE})"
        ) from exc
    except ImportError as exc:
        driver = exc.name or url.get_driver_name()
        hint = _DRIVER_HINTS.get(url.drivername, f"pip install {driver}")
        raise MissingDependencyError(
            f"The database URL {masked} needs the driver '{driver}', which is not installed. Fix: {hint}"
        ) from exc
    except ArgumentError as exc:
        raise DatabaseError(
            f"Invalid database URL {masked}: {one_line(str(exc))}. Fix: correct the URL ({_WHERE})"
        ) from exc


def _connect_error(masked: str, exc: DBAPIError, *, doing: str = "connect to") -> DatabaseError:
    reason = one_line(str(exc.orig) if exc.orig is not None else str(exc)).rstrip(".")
    lowered = reason.lower()
    if "does not exist" in lowered and "database" in lowered:
        fix = f"create it (createdb NAME) or pass a different {_WHERE}"
    elif "password" in lowered or "authentication" in lowered:
        fix = f"check the user and password in the URL ({_WHERE})"
    elif "database is locked" in lowered:
        fix = "another process is writing to it for too long; retry when it is done"
    elif "unable to open database file" in lowered or "readonly" in lowered:
        fix = f"pass a writable file path ({_WHERE})"
    else:
        fix = f"start the server or pass a different {_WHERE}"
    end = "" if reason.endswith(("?", "!")) else "."
    return DatabaseError(f"Cannot {doing} the database {masked}: {reason}{end} Fix: {fix}")


def _sqlite_is_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _make_sqlite_dir(url: URL, masked: str) -> None:
    database = url.database or ""
    if database.startswith("file:"):  # a sqlite URI (uri=true): leave it to SQLite
        return
    parent = Path(database).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create the directory {parent} for the SQLite database {masked}: "
            f"{exc.strerror or exc}. Fix: pass a writable path ({_WHERE})"
        ) from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, foreign_keys: bool = True) -> None:
    """Per-connection SQLite settings (pragmas are not persisted, except journal_mode)."""
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


def _migration_engine(url: URL) -> Engine:
    """A SQLite engine whose transactions really are transactions, for migrating.

    Python's sqlite3 module only opens a transaction before INSERT/UPDATE/DELETE,
    so DDL would autocommit statement by statement and a failed migration would
    leave a half-built schema. Here the driver's handling is switched off and
    every transaction is an explicit ``BEGIN IMMEDIATE``, which also takes the
    write lock up front so two processes cannot migrate at once.
    """
    kwargs: dict[str, Any] = {"poolclass": NullPool, "json_serializer": json_dumps}
    if _sqlite_is_memory(url):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        # Foreign keys off while migrating: batch mode rebuilds tables by
        # drop-and-rename, which would otherwise cascade-delete child rows.
        # They are checked with PRAGMA foreign_key_check before committing.
        _sqlite_pragmas(dbapi_connection, record, foreign_keys=False)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise _connect_error(mask_url(engine.url), exc) from exc


def _upgrade(engine: Engine) -> None:
    """Run all pending migrations in one transaction, serialised across processes."""
    masked = mask_url(engine.url)
    config = alembic_config()
    is_sqlite = engine.dialect.name == "sqlite"
    if is_sqlite and _sqlite_is_memory(engine.url):
        migrator = engine  # one shared connection: the app engine must see the tables
    elif is_sqlite:
        migrator = _migration_engine(engine.url)
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
            f"{_WHERE}"
        ) from exc
    except DBAPIError as exc:
        raise _connect_error(masked, exc, doing="migrate") from exc
    finally:
        if migrator is not engine:
            migrator.dispose()
            # SQLite connections opened before the migration keep a stale schema
            # for PRAGMA-based introspection (index_list...): start fresh ones.
            engine.dispose()
