"""Declarative base, portable column types and shared helpers for all models.

Every table in gemmawatch derives from :class:`Base`. Two portability rules
live here so that no model has to think about the dialect:

* timestamps are :class:`UTCDateTime`: stored as naive UTC (SQLite has no time
  zones, and ``TIMESTAMP WITHOUT TIME ZONE`` on PostgreSQL is independent of the
  server's ``TimeZone`` setting) and always returned as aware UTC;
* JSON columns are :data:`JSONType`: ``JSON`` on SQLite, ``JSONB`` on
  PostgreSQL (indexable, compact, normalised).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

#: Deterministic constraint names, so migrations can refer to (and drop) them
#: by name on every dialect; SQLite batch migrations need named constraints.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")

#: Primary keys of the high-volume tables (samples, telemetry). SQLite only
#: auto-increments a column declared exactly ``INTEGER PRIMARY KEY`` (which is
#: 64-bit there anyway), so BIGINT is used on every other dialect.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind the models store)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive datetime is taken to already be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that accepts aware datetimes and always returns aware UTC.

    Values are converted to UTC and stored naive. A naive value passed in is
    assumed to be UTC already (``datetime.utcnow()`` style), never local time.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to naive UTC before it reaches the driver."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach the UTC zone that was stripped on the way in."""
        if value is None:
            return None
        return as_utc(value)


class Base(DeclarativeBase):
    """Declarative base of every gemmawatch table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        str: String(),
    }
