"""Shared helpers for the query modules: validating bulk rows and turning results into dicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Double, Table, TextClause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Base, UTCDateTime


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (typed, for mypy)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def prepare_rows(
    model: type[Base],
    rows: Iterable[Mapping[str, Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Callable[[], Any]] | None = None,
) -> list[dict[str, Any]]:
    """Validate ``rows`` for a bulk insert into ``model`` and give them all the same keys.

    Unknown keys and missing required values raise ``ValueError`` naming them
    (a typo must not silently drop data). ``fixed`` values override each row
    (e.g. the ``run_id`` argument). Missing keys take ``defaults`` or NULL.
    Nullable float columns turn NaN/inf into NULL; required ones reject them,
    because SQLite would store NaN as NULL and PostgreSQL as NaN. Epoch
    seconds are accepted for timestamp columns.
    """
    table = table_of(model)
    name = table.name
    columns = {c.key: c for c in table.columns if not c.primary_key}
    defaults = defaults or {}
    fixed = fixed or {}
    # Everything that does not depend on the row is worked out once (this runs per telemetry batch).
    known = set(columns) | {"id"}
    required = [key for key, c in columns.items() if not c.nullable and key not in fixed and key not in defaults]
    specs = [
        (key, column.nullable, isinstance(column.type, Double), isinstance(column.type, UTCDateTime))
        for key, column in columns.items()
    ]
    prepared: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not known.issuperset(row):
            unknown = set(row) - known
            raise ValueError(
                f"{name} row {index}: unknown field(s) {sorted(unknown)}; expected some of {sorted(columns)}"
            )
        missing = [key for key in required if key not in row]
        if missing:
            raise ValueError(f"{name} row {index}: missing required field(s) {missing}")
        out: dict[str, Any] = {}
        for key, nullable, is_double, is_time in specs:
            if key in fixed:
                value = fixed[key]
            elif key in row:
                value = row[key]
            elif key in defaults:
                value = defaults[key]()
            else:
                value = None
            if is_double and isinstance(value, float) and not math.isfinite(value):
                if not nullable:
                    raise ValueError(f"{name} row {index}: '{key}' is {value}, a finite number is required")
                value = None
            elif is_time and isinstance(value, int | float):
                value = datetime.fromtimestamp(value, UTC)
            if value is None and not nullable:
                raise ValueError(f"{name} row {index}: '{key}' must not be None")
            out[key] = value
        prepared.append(out)
    return prepared


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
    """Insert prepared rows with one executemany; returns how many were inserted."""
    if not rows:
        return 0
    session.execute(table_of(model).insert(), rows)
    return len(rows)


def insert_or_update(
    session: Session,
    table: Table,
    values: dict[str, Any],
    *,
    conflict: list[str],
    update: Iterable[str],
    where: ColumnElement[bool] | TextClause | None = None,
) -> int | None:
    """``INSERT ... ON CONFLICT (conflict) [WHERE where] DO UPDATE ... RETURNING id``.

    Atomic on SQLite and PostgreSQL (both spell it the same way); returns the
    inserted or updated row's id, or None on a dialect without ON CONFLICT.
    """
    dialect = session.get_bind().dialect.name
    stmt: sqlite.Insert | postgresql.Insert
    if dialect == "sqlite":
        stmt = sqlite.insert(table).values(values)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).values(values)
    else:
        return None
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in conflict],
        index_where=where,
        set_={name: stmt.excluded[name] for name in update},
    )
    return int(session.execute(upsert.returning(table.c.id)).scalar_one())


def upsert_returning_id(
    session: Session,
    model: type[Base],
    values: dict[str, Any],
    *,
    key: str,
    update: Iterable[str],
) -> int:
    """Insert ``values`` or, if a row with the same unique ``key`` exists, update it; return the id.

    Atomic on SQLite and PostgreSQL, so two processes registering the same
    name cannot collide.
    """
    table = table_of(model)
    update = list(update)
    row_id = insert_or_update(session, table, values, conflict=[key], update=update)
    if row_id is not None:
        return row_id
    # Other dialects: check then write (fine for a single writer).
    existing = session.execute(table.select().where(table.c[key] == values[key])).first()
    if existing is None:
        result = session.execute(table.insert().values(values).returning(table.c.id))
        return int(result.scalar_one())
    session.execute(table.update().where(table.c.id == existing.id).values({c: values[c] for c in update}))
    return int(existing.id)
