"""Alembic environment, configured from code (there is no alembic.ini).

gemmawatch.storage.engine builds the ``alembic.config.Config`` and passes an
open connection, already inside a transaction (and, on PostgreSQL, holding the
migration advisory lock), as ``config.attributes["connection"]``. The whole
upgrade then runs in that single transaction: it either reaches head or leaves
the database exactly as it was.

To write a new revision: ``command.revision(alembic_config(url), "message",
autogenerate=True)`` with :func:`gemmawatch.storage.engine.alembic_config`,
then edit the generated file by hand until it needs no models import.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from gemmawatch.storage.models import Base


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # The caller's transaction wraps all revisions, so one failure undoes all.
        transaction_per_migration=False,
        compare_type=True,
    )


def run_migrations_online() -> None:
    """Run against the caller's connection, or a URL when called from the alembic CLI."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass config.attributes['connection']")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Emit SQL (``alembic upgrade --sql``) instead of executing it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
