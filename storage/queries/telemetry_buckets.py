"""Building blocks of the telemetry rollups and series queries: time buckets in SQL, label keys, state.

Shared by :mod:`~gemmawatch.storage.queries.telemetry_rollups` (writing
rollups) and :mod:`~gemmawatch.storage.queries.telemetry_series` (reading
them). SQLite and PostgreSQL only.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ColumnElement, Integer, String, Table, cast, func, literal_column, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from gemmawatch.storage.models import TelemetryRollupState, UTCDateTime, as_utc
from gemmawatch.storage.queries._rows import table_of

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "bucket_start",
    "canonical_labels",
    "dialect_insert",
    "floor_time",
    "label_filters",
    "labels_key_sql",
    "rollup_state",
    "sql_dialect",
]

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

#: Name of the SQLite function computing ``labels_key`` (registered on the connection on use).
_SQLITE_LABELS_KEY = "gemmawatch_labels_key"


def floor_time(value: datetime, width: timedelta) -> datetime:
    """``value`` (aware UTC) rounded down to a multiple of ``width`` since the Unix epoch."""
    step = int(width.total_seconds())
    return datetime.fromtimestamp(math.floor(as_utc(value).timestamp() / step) * step, UTC)


def bucket_start(dialect: str, column: ColumnElement[Any], width_s: int) -> ColumnElement[datetime]:
    """SQL for the start of the ``width_s``-second bucket holding timestamp ``column`` (UTC, epoch-aligned).

    SQLite stores timestamps as text ``YYYY-MM-DD HH:MM:SS.ffffff``. Widths
    that divide an hour (in whole minutes) or a day (in whole hours) are cut
    from the text, which is several times faster than parsing dates; other
    widths go through epoch seconds. The result has the same text form, so it
    compares and groups with stored values. PostgreSQL uses ``date_trunc`` or
    epoch arithmetic. Constants are inlined so the expression can be repeated in GROUP BY.
    """
    width = int(width_s)
    if width <= 0:
        raise ValueError(f"bucket width must be > 0 seconds, got {width_s}")
    expr: ColumnElement[Any]
    if dialect == "sqlite":
        expr = _sqlite_text_bucket(column, width)
    elif dialect == "postgresql":
        if width in (60, 3600, 86400):
            unit = {60: "minute", 3600: "hour", 86400: "day"}[width]
            expr = func.date_trunc(literal_column(f"'{unit}'"), column)
        else:
            # ``timestamp without time zone`` holds naive UTC; extract(epoch) reads it as UTC.
            seconds = func.floor(func.extract("epoch", column) / literal_column(str(width))) * literal_column(
                str(width)
            )
            expr = literal_column("TIMESTAMP '1970-01-01 00:00:00'") + seconds * literal_column("INTERVAL '1 second'")
    else:
        raise NotImplementedError(f"telemetry rollups support SQLite and PostgreSQL, not {dialect}")
    return type_coerce(expr, UTCDateTime())


def _sqlite_text_bucket(column: ColumnElement[Any], width: int) -> ColumnElement[Any]:
    def keep(chars: int, suffix: str) -> ColumnElement[Any]:
        return func.substr(column, literal_column("1"), literal_column(str(chars))).op("||")(
            literal_column(f"'{suffix}'")
        )

    def floored(first: int, step: int, head: int, suffix: str) -> ColumnElement[Any]:
        # Text up to ``head`` chars, then the 2-digit field at ``first`` rounded down to ``step``.
        field = cast(func.substr(column, literal_column(str(first)), literal_column("2")), Integer)
        step_sql = literal_column(str(step), Integer)
        rounded = func.printf(literal_column("'%02d'"), (field // step_sql) * step_sql)
        return keep(head, "").op("||")(rounded).op("||")(literal_column(f"'{suffix}'"))

    if width == 60:
        return keep(16, ":00.000000")
    if width == 3600:
        return keep(13, ":00:00.000000")
    if width == 86400:
        return keep(10, " 00:00:00.000000")
    if width % 60 == 0 and 3600 % width == 0:
        return floored(15, width // 60, 14, ":00.000000")
    if width % 3600 == 0 and 86400 % width == 0:
        return floored(12, width // 3600, 11, ":00:00.000000")
    epoch = cast(func.strftime(literal_column("'%s'"), column), Integer)
    return func.strftime(
        literal_column("'%Y-%m-%d %H:%M:%S.000000'"),
        (epoch // literal_column(str(width), Integer)) * literal_column(str(width), Integer),
        literal_column("'unixepoch'"),
    )


@functools.lru_cache(maxsize=4096)
def canonical_labels(text: str | None) -> str:
    """The ``labels_key`` of stored labels JSON on SQLite: compact JSON with sorted keys."""
    if text is None:
        return "{}"
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(text)


def labels_key_sql(dialect: str, labels: ColumnElement[Any]) -> ColumnElement[str]:
    if dialect == "sqlite":
        return getattr(func, _SQLITE_LABELS_KEY)(labels, type_=String())
    # jsonb's text form is canonical: keys de-duplicated and sorted (by length, then bytes).
    return cast(labels, String())


def sql_dialect(s: Session) -> str:
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        # A per-connection function; registering again is harmless and cheap.
        driver = s.connection().connection.driver_connection
        driver.create_function(_SQLITE_LABELS_KEY, 1, canonical_labels, deterministic=True)  # type: ignore[union-attr]
    elif dialect != "postgresql":
        raise NotImplementedError(f"telemetry rollups support SQLite and PostgreSQL, not {dialect}")
    return dialect


def dialect_insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    return sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)


def label_filters(
    dialect: str, column: ColumnElement[Any], labels: Mapping[str, str] | None, *, as_text: bool = False
) -> list[ColumnElement[bool]]:
    """``column``'s labels have each given value; ``as_text``: ``column`` holds JSON text (``labels_key``)."""
    if not labels:
        return []
    document: ColumnElement[Any] = column
    if as_text:
        document = cast(column, JSONB()) if dialect == "postgresql" else type_coerce(column, JSON())
    # Compared as text on both dialects (SQLite's json_extract would keep numbers as numbers).
    return [cast(document[key].as_string(), String()) == str(value) for key, value in labels.items()]


def rollup_state(s: Session) -> dict[str, datetime | None]:
    """``rolled_until``, ``raw_pruned_until``, ``minute_pruned_until`` (all None before the first rollup)."""
    st = table_of(TelemetryRollupState)
    row = s.execute(
        select(st.c.rolled_until, st.c.raw_pruned_until, st.c.minute_pruned_until).where(st.c.id == 1)
    ).first()
    keys = ("rolled_until", "raw_pruned_until", "minute_pruned_until")
    return dict(zip(keys, row, strict=True)) if row is not None else dict.fromkeys(keys)
