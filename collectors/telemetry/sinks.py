"""Sinks: where a sampler's row batches go."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gemmawatch.collectors.telemetry.sampler import Sink

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def storage_sink(engine: Engine) -> Sink:
    """A sink that inserts each batch into ``TelemetrySample`` in its own transaction.

    Each call opens a fresh ``session_scope`` because the sampler calls the
    sink from its background thread, and sessions must not be shared across
    threads. Storage is imported lazily so telemetry works without a database.
    """
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries.telemetry import add_telemetry

    def sink(rows: list[dict[str, Any]]) -> None:
        with session_scope(engine) as session:
            add_telemetry(session, rows)

    return sink


class ListSink:
    """Collects every batch in memory (tests, short CLI probes)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.batches = 0

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        """Append the batch."""
        self.rows.extend(rows)
        self.batches += 1
