"""Targets: the models under test that runs are recorded against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gemmawatch.storage.models import Target
from gemmawatch.storage.queries._rows import table_of, upsert_returning_id

_UPDATED = ("backend", "model_id", "revision", "dtype", "quantization", "options")


def upsert_target(
    s: Session,
    *,
    name: str,
    backend: str,
    model_id: str,
    revision: str | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Register the target ``name`` (or update its definition in place); returns its id."""
    values = {
        "name": name,
        "backend": backend,
        "model_id": model_id,
        "revision": revision,
        "dtype": dtype,
        "quantization": quantization,
        "options": dict(options or {}),
    }
    return upsert_returning_id(s, Target, values, key="name", update=_UPDATED)


def list_targets(s: Session) -> list[dict[str, Any]]:
    """Every stored target, ordered by name, as plain dicts of all columns."""
    table = table_of(Target)
    rows = s.execute(select(table).order_by(table.c.name)).mappings()
    return [dict(row) for row in rows]


def get_target(s: Session, name: str) -> dict[str, Any] | None:
    """The target called ``name`` as a dict, or None."""
    table = table_of(Target)
    row = s.execute(select(table).where(table.c.name == name)).mappings().first()
    return dict(row) if row is not None else None
