"""The monitor's main loop: a dispatcher that fires scheduled jobs onto worker lanes.

Lanes keep one slow thing from delaying another: each target has its own
single-thread lane (its probes run one at a time, and a hung target delays only
itself), scrapes and host telemetry share a small pool, and writing + alert
evaluation (the *tick*) has its own, so a dead database never blocks a probe.
A job whose previous run is still going is skipped (and counted) rather than
queued. Producers only append to the bounded :class:`~.buffer.RowBuffer`.

:meth:`Monitor.stop` (a signal handler calls it) ends dispatching; in-flight
jobs get a grace period, then the buffer is flushed once more and the alerts
are evaluated a last time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gemmawatch.collectors.monitor.alerting import FiringSet
from gemmawatch.collectors.monitor.buffer import RowBuffer, RowKind
from gemmawatch.collectors.monitor.exposition import MonitorMetrics
from gemmawatch.collectors.monitor.probes import Probe, probe_rows
from gemmawatch.collectors.monitor.schedule import IntervalSchedule, Schedule
from gemmawatch.collectors.monitor.writer import Flusher, Store
from gemmawatch.collectors.telemetry.sampler import TelemetrySampler
from gemmawatch.errors import one_line

log = logging.getLogger(__name__)

__all__ = ["CollectJob", "Monitor", "MonitorSummary"]

Progress = Callable[[str], None]


@dataclass
class CollectJob:
    """Scheduled telemetry: a sampler (not started; called once per fire) and its kind (``telemetry``/``scrape``)."""

    name: str
    sampler: TelemetrySampler
    schedule: Schedule
    kind: str = "telemetry"


@dataclass
class MonitorSummary:
    """What a monitor did before it stopped (``--json`` output of ``gemmawatch monitor``)."""

    run_id: int
    status: str = "running"
    probes_ok: int = 0
    probes_failed: int = 0
    probes_skipped: int = 0
    rows_written: int = 0
    rows_dropped: int = 0
    rows_unwritten: int = 0
    write_errors: int = 0
    alerts_firing: int = 0
    alert_transitions: list[dict[str, Any]] = field(default_factory=list)
    metrics_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain dict (the transitions as the engine returned them)."""
        return dict(self.__dict__)


@dataclass
class _Job:
    name: str
    schedule: Schedule
    lane: ThreadPoolExecutor
    action: Callable[[], None]
    gate: Callable[[], str | None] = lambda: None
    on_skip: Callable[[str], None] = lambda _reason: None
    next_at: float = 0.0
    future: Future[None] | None = None

    def busy(self) -> bool:
        return self.future is not None and not self.future.done()


class Monitor:
    """Runs probes, scrapes, telemetry and ticks on their schedules until stopped (see the module docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        probes: Sequence[Probe],
        collect: Sequence[CollectJob],
        buffer: RowBuffer,
        metrics: MonitorMetrics,
        host: str,
        flush_every_s: float,
        batch_rows: int,
        alerts_every_s: float | None,
        grace_s: float = 15.0,
        progress: Progress = lambda _msg: None,
    ) -> None:
        self.store = store
        self.probes = list(probes)
        self.collect = list(collect)
        self.buffer = buffer
        self.metrics = metrics
        self.host = host
        self.grace_s = grace_s
        self.progress = progress
        self.summary = MonitorSummary(run_id=store.run_id)
        self.flusher = Flusher(
            buffer,
            store,
            batch_rows=batch_rows,
            on_written=metrics.rows_written.inc,
            on_error=metrics.write_errors.inc,
            on_dropped=metrics.rows_dropped.inc,
        )
        self._alerts = IntervalSchedule(alerts_every_s) if alerts_every_s else None
        self._alerts_due = 0.0
        self._firing = FiringSet()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._jobs = self._make_jobs(flush_every_s)

    # -- construction ---------------------------------------------------------------------

    def _lane(self, name: str, workers: int = 1) -> ThreadPoolExecutor:
        if name not in self._lanes:
            self._lanes[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"monitor-{name}")
        return self._lanes[name]

    def _make_jobs(self, flush_every_s: float) -> list[_Job]:
        jobs = []
        for probe in self.probes:
            schedule = probe.cfg.schedule.build()
            jobs.append(
                _Job(
                    f"probe {probe.name}",
                    schedule,
                    self._lane(f"target-{probe.endpoint.name}"),
                    partial(self._run_probe, probe, schedule.interval_s),
                    gate=probe.endpoint.admit,
                    on_skip=partial(self._skipped, probe),
                )
            )
        for job in self.collect:
            lane = self._lane("collect", workers=2)
            jobs.append(_Job(f"{job.kind} {job.name}", job.schedule, lane, partial(self._run_collect, job)))
        # The tick comes last so that at start (and with --once) it writes what the others produced.
        jobs.append(_Job("tick", IntervalSchedule(flush_every_s), self._lane("writer"), self._tick))
        return jobs

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop (thread- and signal-safe); :meth:`run` then flushes and returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self, *, once: bool = False, duration_s: float | None = None) -> MonitorSummary:
        """Run until :meth:`stop`, ``duration_s`` seconds, or (``once``) one fire of every job; then flush."""
        try:
            if once:
                self._run_once()
            else:
                self._loop(duration_s)
        finally:
            self._shutdown()
        return self.summary

    def _loop(self, duration_s: float | None) -> None:
        start = time.time()
        deadline = start + duration_s if duration_s is not None else None
        for job in self._jobs:
            job.next_at = job.schedule.first(start)
        self._alerts_due = start
        while not self._stop.is_set():
            now = time.time()
            if deadline is not None and now >= deadline:
                break
            for job in self._jobs:
                if now >= job.next_at:
                    self._dispatch(job)
                    job.next_at = job.schedule.next_after(now)
            wake = min(job.next_at for job in self._jobs)
            if deadline is not None:
                wake = min(wake, deadline)
            self._stop.wait(max(0.0, min(wake - time.time(), 5.0)))

    def _run_once(self) -> None:
        futures = [f for job in self._jobs if job.name != "tick" and (f := self._dispatch(job)) is not None]
        wait(futures, timeout=self.grace_s)

    def _dispatch(self, job: _Job) -> Future[None] | None:
        if job.busy():
            job.on_skip("busy")
            return None
        reason = job.gate()
        if reason is not None:
            job.on_skip(reason)
            return None
        job.future = job.lane.submit(self._guarded, job)
        return job.future

    def _guarded(self, job: _Job) -> None:
        try:
            job.action()
        except Exception:  # a bug in one job must not stop the monitor
            log.exception("monitor job %s failed", job.name)

    # -- jobs --------------------------------------------------------------------------------

    def _emit(self, kind: RowKind, rows: list[dict[str, Any]]) -> None:
        dropped = self.buffer.add(kind, rows)
        if dropped:
            self.metrics.rows_dropped.inc(dropped)

    def _skipped(self, probe: Probe, reason: str) -> None:
        self.metrics.probes.labels(probe.endpoint.name, probe.name, f"skipped_{reason}").inc()
        with self._lock:
            self.summary.probes_skipped += 1

    def _run_probe(self, probe: Probe, interval_s: float) -> None:
        was_up = probe.endpoint.up
        outcome = probe.run()
        rows, sample = probe_rows(outcome, host=self.host, interval_s=interval_s)
        self._emit("telemetry", rows)
        self._emit("sample", [sample])
        target, r = outcome.target, outcome.result
        m = self.metrics
        m.probes.labels(target, probe.name, "ok" if outcome.ok else "error").inc()
        m.target_up.labels(target).set(1 if outcome.ok else 0)
        if outcome.ok:
            m.e2e.labels(target).observe(r.e2e_s)
            if r.ttft_s is not None:
                m.ttft.labels(target).observe(r.ttft_s)
        with self._lock:
            if outcome.ok:
                self.summary.probes_ok += 1
            else:
                self.summary.probes_failed += 1
        if outcome.ok and was_up is False:
            self.progress(f"Target {target} answers again (probe {probe.name})")
        elif not outcome.ok and was_up is not False:
            rest = probe.endpoint.backoff.resume_at - time.monotonic()
            self.progress(
                f"Target {target} failed probe {probe.name}: {r.error_class}: {one_line(r.error or '')[:200]}"
                f" (next attempt in {max(rest, 0):.1f} s or later)"
            )

    def _run_collect(self, job: CollectJob) -> None:
        before = job.sampler.stats.collector_errors
        rows = job.sampler.sample_once()
        if job.kind == "scrape" and job.sampler.stats.collector_errors > before:
            self.metrics.scrape_errors.labels(job.name).inc()
        self._emit("telemetry", rows)

    def _tick(self, *, force_alerts: bool = False) -> None:
        ok = self.flusher.flush()
        now = time.time()
        if ok and self._alerts is not None and (force_alerts or now >= self._alerts_due):
            self._alerts_due = self._alerts.next_after(now)
            self._evaluate_alerts()
        self.metrics.last_tick.set(time.time())

    def _evaluate_alerts(self) -> None:
        try:
            transitions = self.store.evaluate_alerts(datetime.now(UTC))
        except Exception as exc:
            self.metrics.alert_errors.inc()
            log.warning("alert evaluation failed: %s", one_line(f"{type(exc).__name__}: {exc}")[:300])
            return
        if transitions is None:
            return
        self.metrics.alerts_firing.set(self._firing.update(transitions))
        for t in transitions:
            state = t.get("state")
            if state == "resolved" or (state == "firing" and t.get("new", True)):
                self.progress(f"Alert {state}: {t.get('message') or t.get('rule')}")
                with self._lock:
                    self.summary.alert_transitions.append(dict(t))

    # -- shutdown ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        pending = [job.future for job in self._jobs if job.future is not None and job.name != "tick"]
        _, not_done = wait([f for f in pending if f is not None], timeout=self.grace_s)
        if not_done:
            log.warning("%d monitor jobs still running after %.0f s; their rows are lost", len(not_done), self.grace_s)
        tick = next(job for job in self._jobs if job.name == "tick")
        if tick.future is not None:
            wait([tick.future], timeout=self.grace_s)
        for lane in self._lanes.values():
            lane.shutdown(wait=False, cancel_futures=True)
        try:
            self._tick(force_alerts=True)
        except Exception:  # a bug here must still let the run be closed
            log.exception("the final write of the monitor failed")
        for probe in self.probes:
            probe.endpoint.close()
        for job in self.collect:
            for collector in job.sampler.collectors:
                close = getattr(collector, "close", None)
                if close is not None:
                    close()
        s = self.summary
        s.rows_written = self.flusher.written
        s.rows_dropped = self.buffer.dropped
        s.rows_unwritten = len(self.buffer)
        s.write_errors = self.flusher.errors
        s.alerts_firing = len(self._firing)
