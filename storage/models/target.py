"""The ``targets`` table: a model under test (backend + model id + how it is loaded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column

from gemmawatch.storage.models.base import Base, utcnow


class Target(Base):
    """A named model configuration that runs are recorded against.

    ``name`` is the user-facing handle (``gemma-3-270m``); re-registering the
    same name updates the row in place so run history stays attached to it.
    """

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    backend: Mapped[str]
    model_id: Mapped[str]
    revision: Mapped[str | None]
    dtype: Mapped[str | None]
    quantization: Mapped[str | None]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Target(id={self.id!r}, name={self.name!r}, backend={self.backend!r})"
