"""Writing buffered rows to the database, surviving outages.

:class:`SqlStore` is the database side of a monitor: its run (kind
``monitor``, one per process start), batched inserts and alert evaluation.
:class:`Flusher` moves rows from the :class:`~.buffer.RowBuffer` to a store in
batches. A connection problem keeps the rows buffered for the next tick (the
buffer's bound then decides what is lost); rows the database *rejects* (a
constraint, a value it cannot store) are dropped and counted, so one bad
batch can never block every later one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gemmawatch.collectors.monitor.buffer import BufferedRow, RowBuffer
from gemmawatch.errors import DatabaseError, one_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gemmawatch.collectors.backends.base import TargetInfo
    from gemmawatch.collectors.monitor.alerting import SeriesEvaluator

log = logging.getLogger(__name__)

__all__ = ["Flusher", "SqlStore", "Store", "is_transient"]

MONITOR_KIND = "monitor"


class Store(Protocol):
    """Where a monitor's rows and run status go (tests pass one that fails on purpose)."""

    run_id: int

    def write(self, telemetry: list[dict[str, Any]], samples: list[dict[str, Any]]) -> None:
        """Store one batch in one transaction (raise on failure)."""
        ...

    def evaluate_alerts(self, now: datetime) -> list[dict[str, Any]] | None:
        """Evaluate the series rules; None when alerting is unavailable."""
        ...

    def finish(self, status: str, error: str | None = None) -> None:
        """Close the monitor's run with ``status`` (completed/failed)."""
        ...


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying later (the database is away), False for rejected rows."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    transient = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError, DatabaseError, OSError)
    return isinstance(exc, transient)  # OSError covers ConnectionError and TimeoutError


class SqlStore:
    """The monitor's run and rows in the gemmawatch database."""

    def __init__(self, engine: Engine, run_id: int, *, host: str, evaluator: SeriesEvaluator | None) -> None:
        self.engine = engine
        self.run_id = run_id
        self.host = host
        #: ``evaluate_series`` (None: alerting off); tests may replace it.
        self.evaluator = evaluator

    @classmethod
    def open(
        cls,
        engine: Engine,
        *,
        host: str,
        config: Mapping[str, Any],
        targets: Sequence[TargetInfo],
        label: str | None,
        alerts: bool,
        rules: Sequence[Any] = (),
        routes: Mapping[str, Sequence[str]] | None = None,
    ) -> SqlStore:
        """Create the monitor's run (status ``running``), record its targets, store the alert rules.

        With ``alerts``, the built-in rules and ``rules`` (parsed config rules) are
        stored and the evaluator notifies ``routes`` (severity -> URLs).
        """
        from gemmawatch.provenance import package_versions
        from gemmawatch.storage.engine import session_scope
        from gemmawatch.storage.queries import runs as rq
        from gemmawatch.storage.queries import targets as tq

        with session_scope(engine) as s:
            for info in targets:
                tq.upsert_target(
                    s,
                    name=info.name,
                    backend=info.backend,
                    model_id=info.model_id,
                    revision=info.revision,
                    dtype=info.dtype,
                    quantization=info.quantization,
                    options=dict(info.options),
                )
            run_id = rq.create_run(
                s, kind=MONITOR_KIND, target_id=None, config=config, host=host, versions=package_versions(), label=label
            )
        evaluator = None
        if alerts:
            from gemmawatch.collectors.monitor.alerting import seed_rules, series_evaluator, with_routes

            evaluator = series_evaluator()
            if evaluator is not None:
                with session_scope(engine) as s:
                    seed_rules(s, rules)
                evaluator = with_routes(evaluator, routes or {})
        return cls(engine, run_id, host=host, evaluator=evaluator)

    def write(self, telemetry: list[dict[str, Any]], samples: list[dict[str, Any]]) -> None:
        """Insert one batch (telemetry and samples) in one transaction."""
        from gemmawatch.storage.engine import session_scope
        from gemmawatch.storage.queries.samples import add_samples
        from gemmawatch.storage.queries.telemetry import add_telemetry

        with session_scope(self.engine) as s:
            if telemetry:
                add_telemetry(s, [{**row, "run_id": self.run_id} for row in telemetry])
            if samples:
                add_samples(s, self.run_id, samples)

    def evaluate_alerts(self, now: datetime) -> list[dict[str, Any]] | None:
        """``evaluate_series`` for this host, in its own transaction (None without an evaluator)."""
        if self.evaluator is None:
            return None
        from gemmawatch.storage.engine import session_scope

        with session_scope(self.engine) as s:
            return list(self.evaluator(s, now=now, host=self.host))

    def finish(self, status: str, error: str | None = None) -> None:
        """Set the run's final status."""
        from gemmawatch.storage.engine import session_scope
        from gemmawatch.storage.queries import runs as rq

        with session_scope(self.engine) as s:
            rq.finish_run(s, self.run_id, status=status, error=error)


class Flusher:
    """Moves buffered rows to a store, ``batch_rows`` per transaction, until the buffer is empty or a write fails."""

    def __init__(
        self,
        buffer: RowBuffer,
        store: Store,
        *,
        batch_rows: int,
        on_written: Callable[[int], None] = lambda _n: None,
        on_error: Callable[[], None] = lambda: None,
        on_dropped: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.buffer = buffer
        self.store = store
        self.batch_rows = batch_rows
        self._on_written, self._on_error, self._on_dropped = on_written, on_error, on_dropped
        self.written = 0
        self.errors = 0
        #: True while the last write failed for a transient reason.
        self.failing = False
        self.last_error: str | None = None

    def flush(self) -> bool:
        """Write everything buffered; False when the database is away (the rest stays buffered)."""
        while batch := self.buffer.peek(self.batch_rows):
            telemetry = [b.row for b in batch if b.kind == "telemetry"]
            samples = [b.row for b in batch if b.kind == "sample"]
            try:
                self.store.write(telemetry, samples)
            except Exception as exc:
                self.errors += 1
                self._on_error()
                self.last_error = one_line(f"{type(exc).__name__}: {exc}")[:300]
                if not is_transient(exc):
                    self._reject(batch)
                    continue
                self.buffer.release()
                if not self.failing:
                    log.warning("database write failed; %d rows stay buffered: %s", len(self.buffer), self.last_error)
                self.failing = True
                return False
            written = self.buffer.commit(batch)
            self.written += written
            self._on_written(written)
            if self.failing:
                log.warning("database writes work again")
                self.failing = False
        return True

    def _reject(self, batch: list[BufferedRow]) -> None:
        dropped = self.buffer.discard(batch)
        self._on_dropped(dropped)
        log.error("the database rejected %d rows; dropped them: %s", dropped, self.last_error)
