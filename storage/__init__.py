"""Persistence for gemmawatch: SQLAlchemy models, migrations, engines and queries.

SQLite by default (a file in the user data dir), PostgreSQL when
``GEMMAWATCH_DB`` / ``--db`` says so. Typical use::

    from gemmawatch.storage import get_engine, session_scope
    from gemmawatch.storage.queries import runs

    with session_scope(get_engine()) as s:
        print(runs.list_runs(s, limit=10))
"""

from gemmawatch.storage.engine import (
    current_revision,
    dispose_engines,
    get_engine,
    head_revision,
    resolve_url,
    session_scope,
    upgrade,
)

__all__ = [
    "current_revision",
    "dispose_engines",
    "get_engine",
    "head_revision",
    "resolve_url",
    "session_scope",
    "upgrade",
]
