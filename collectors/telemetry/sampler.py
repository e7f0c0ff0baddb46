"""Background sampling of collectors into batched row dicts."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gemmawatch.collectors.telemetry.base import Collector
from gemmawatch.collectors.telemetry.flatline import DEFAULT_MIN_DURATION_S, FlatlineTracker

log = logging.getLogger(__name__)

#: ``sink(rows)`` receives batches of TelemetrySample row dicts.
Sink = Callable[[list[dict[str, Any]]], None]

#: Default sampling interval: 10 Hz (about 0.5% of one core with the default
#: collectors and SQLite, see ``benchmarks/telemetry_overhead.py``).
DEFAULT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class SamplerStats:
    """Counters of a sampler's life so far (a snapshot; safe to read any time)."""

    samples: int = 0  #: ticks taken (each tick calls every collector once)
    rows_emitted: int = 0  #: rows handed to the sink without error
    rows_dropped: int = 0  #: rows lost because the sink raised
    collector_errors: int = 0  #: exceptions raised by collectors (caught)
    sink_errors: int = 0  #: exceptions raised by the sink (caught)

    @property
    def errors(self) -> int:
        """All caught errors."""
        return self.collector_errors + self.sink_errors


class TelemetrySampler:
    """Samples collectors on a daemon thread and hands rows to ``sink`` in batches.

    Every ``interval_s`` all collectors are read once; each reading becomes a
    row with the TelemetrySample keys ``run_id, host, source, metric, unit,
    value, ts, interval_s, labels`` (``ts`` is an aware UTC datetime shared by
    all rows of one tick; ``interval_s`` is the sampler's, or the reading's own
    when its collector refreshes it less often). Ticks follow a fixed schedule from ``start()``
    (``start + k * interval_s``) so slow collectors do not make the sampling
    drift; ticks missed while the machine was stalled are skipped, not replayed
    in a burst. Rows are buffered and passed to ``sink`` about every
    ``flush_every_s`` seconds and once more on ``stop()``.

    The thread never dies from a failure: a collector or sink exception is
    logged (the first of each kind with its traceback) and counted in
    ``stats``; rows of a failed sink call are dropped rather than kept, so a
    broken database cannot grow memory without bound.

    Unless ``flatline_window_s`` is None, a :class:`FlatlineTracker` watches the
    rows and adds one ``telemetry.flatlined`` row when a sensor series has held
    exactly one value for that long while ``cpu.percent`` varied.

    Use as a context manager (``with TelemetrySampler(...) as s:``) or call
    ``start()`` / ``stop()``. A sampler runs once; create a new one per run.
    """

    def __init__(
        self,
        collectors: Sequence[Collector],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        sink: Sink,
        run_id: int | None = None,
        host: str | None = None,
        flush_every_s: float = 2.0,
        flatline_window_s: float | None = DEFAULT_MIN_DURATION_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.collectors = list(collectors)
        self.interval_s = float(interval_s)
        self.sink = sink
        self.run_id = run_id
        self.host = host if host is not None else socket.gethostname()
        self.flush_every_s = float(flush_every_s)
        self._buffer: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _stats only; the buffer lives on the thread
        self._stats = SamplerStats()
        self._thread: threading.Thread | None = None
        self._logged: set[str] = set()
        self._flatline = FlatlineTracker(flatline_window_s) if flatline_window_s is not None else None

    @property
    def stats(self) -> SamplerStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    @property
    def running(self) -> bool:
        """True while the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> TelemetrySampler:
        """Start the background thread (the first tick happens immediately)."""
        if self._thread is not None:
            raise RuntimeError("a TelemetrySampler can only be started once")
        self._thread = threading.Thread(target=self._loop, name="gemmawatch-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> SamplerStats:
        """Stop sampling, wait for the final flush, and return the stats.

        Safe to call more than once and before ``start()``. If the sink hangs
        past ``timeout`` seconds the thread is left behind (it is a daemon) and
        a warning is logged.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("telemetry sampler did not stop within %.1f s (sink blocked?)", timeout or 0)
        return self.stats

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def sample_once(self) -> list[dict[str, Any]]:
        """Read every collector once and return the rows (also used by the thread)."""
        ts = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        errors = 0
        interval = self.interval_s
        for collector in self.collectors:
            try:
                readings = list(collector.collect())
            except Exception:
                errors += 1
                name = type(collector).__name__
                self._log_first(f"collector:{name}", "telemetry collector %s failed", name)
                continue
            for r in readings:
                rows.append(
                    {
                        "run_id": self.run_id,
                        "host": self.host,
                        "source": r.source,
                        "metric": r.metric,
                        "unit": r.unit,
                        "value": float(r.value),
                        "ts": ts,
                        "interval_s": interval if r.interval_s is None else max(interval, r.interval_s),
                        "labels": dict(r.labels),
                    }
                )
        if self._flatline is not None:
            try:
                rows.extend(self._flatline.update(rows))
            except Exception:
                errors += 1
                self._log_first("flatline", "telemetry flat-line check failed")
        self._bump(samples=1, collector_errors=errors)
        return rows

    def _loop(self) -> None:
        start = time.monotonic()
        next_flush = start + self.flush_every_s
        tick = 0
        while True:
            self._buffer.extend(self.sample_once())
            now = time.monotonic()
            if now >= next_flush:
                self._flush()
                next_flush = now + self.flush_every_s
            # Drift correction: aim at the absolute schedule, skipping ticks we are already late for.
            tick = max(tick + 1, int((time.monotonic() - start) / self.interval_s) + 1)
            delay = start + tick * self.interval_s - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                break
        self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            self.sink(batch)
        except Exception:
            self._bump(rows_dropped=len(batch), sink_errors=1)
            self._log_first("sink", "telemetry sink failed; dropped a batch")
            return
        self._bump(rows_emitted=len(batch))

    def _bump(self, **deltas: int) -> None:
        with self._lock:
            s = self._stats
            self._stats = SamplerStats(**{k: getattr(s, k) + deltas.get(k, 0) for k in vars(s)})

    def _log_first(self, key: str, message: str, *args: object) -> None:
        """Log the first failure of each kind with a traceback, later ones briefly."""
        if key in self._logged:
            log.debug(message, *args, exc_info=True)
        else:
            self._logged.add(key)
            log.warning(message + " (further failures logged at DEBUG)", *args, exc_info=True)
