"""``run_monitor``: build a monitor from its config, run it, store its run's outcome.

Everything the config names is resolved before anything starts (targets,
prompt files, checks, scrape URLs, the database, the metrics port), so a
mistake is one line and exit status 2 instead of a daemon that fails later.
Once running, target and database outages are data, not errors. SIGTERM and
SIGINT stop it cleanly: flush, mark the run completed, exit 0 (a second signal
interrupts the flush).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.collectors.monitor.alerting import parse_alerting
from gemmawatch.collectors.monitor.buffer import RowBuffer
from gemmawatch.collectors.monitor.checks import resolve_checks
from gemmawatch.collectors.monitor.config import MonitorConfig
from gemmawatch.collectors.monitor.daemon import CollectJob, Monitor, MonitorSummary
from gemmawatch.collectors.monitor.endpoint import Backoff, Endpoint, probe_target_info
from gemmawatch.collectors.monitor.exposition import MetricsServer, MonitorMetrics
from gemmawatch.collectors.monitor.probes import Probe, load_prompts
from gemmawatch.collectors.monitor.ratelimit import TokenBucket
from gemmawatch.collectors.monitor.schedule import IntervalSchedule, format_duration
from gemmawatch.collectors.monitor.writer import SqlStore, Store
from gemmawatch.errors import ConfigError, DatabaseError, GemmawatchError, one_line

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend

__all__ = ["StoreFactory", "build_endpoints", "named_targets", "run_monitor", "stored_config"]

Progress = Callable[[str], None]
#: ``(run config, target infos) -> Store``; the default opens the database.
StoreFactory = Callable[[dict[str, Any], list[TargetInfo]], Store]


def named_targets(cfg: MonitorConfig) -> dict[str, TargetInfo]:
    """The ``targets:`` section as TargetInfos named by their keys."""
    from gemmawatch.collectors.targets import resolve_target

    out: dict[str, TargetInfo] = {}
    for name, spec in cfg.targets.items():
        if isinstance(spec, str):
            try:
                info = resolve_target(spec)
            except GemmawatchError as exc:
                raise ConfigError(f"targets.{name}: {one_line(str(exc))}") from exc
            out[name] = replace(info, name=name)
        else:
            options = {**spec.options, **({"base_url": spec.base_url} if spec.base_url else {})}
            out[name] = TargetInfo(
                name=name,
                backend=spec.backend,
                model_id=spec.model,
                revision=spec.revision,
                dtype=spec.dtype,
                quantization=spec.quantization,
                options=options,
            )
    return out


def build_endpoints(
    cfg: MonitorConfig, *, loader: Callable[[TargetInfo], Backend] | None = None
) -> tuple[dict[str, Endpoint], dict[str, TargetInfo]]:
    """One endpoint per probed target (keyed by probe name) and the targets as configured (by target name)."""
    from gemmawatch.collectors.backends import BACKENDS
    from gemmawatch.collectors.targets import resolve_target

    known = named_targets(cfg)
    infos: dict[str, TargetInfo] = {}
    by_probe: dict[str, str] = {}
    for i, probe in enumerate(cfg.probes):
        try:
            info = resolve_target(probe.target, known)
        except GemmawatchError as exc:
            raise ConfigError(f"probes.{i}.target: {one_line(str(exc))}") from exc
        if info.backend not in BACKENDS:
            raise ConfigError(
                f"probes.{i}.target: unknown backend '{info.backend}' of target '{info.name}'. "
                f"Fix: use one of {', '.join(BACKENDS.names())}"
            )
        infos[info.name] = info
        by_probe[probe.name] = info.name
    for name in cfg.rate_limits.targets:
        if name not in infos:
            raise ConfigError(
                f"rate_limits.targets.{name}: no probe uses target '{name}'. "
                f"Fix: use one of {', '.join(sorted(infos)) or '(no probed targets)'}"
            )
    limits = cfg.rate_limits
    endpoints: dict[str, Endpoint] = {}
    for name, info in infos.items():
        timeout = max(p.timeout_s for p in cfg.probes if by_probe[p.name] == name)
        endpoints[name] = Endpoint(
            probe_target_info(info, timeout),
            bucket=TokenBucket(limits.targets.get(name, limits.max_probes_per_minute), burst=limits.burst),
            backoff=Backoff(cfg.backoff.initial, cfg.backoff.max),
            loader=loader,
        )
    return {probe: endpoints[target] for probe, target in by_probe.items()}, infos


def _probes(cfg: MonitorConfig, endpoints: Mapping[str, Endpoint]) -> list[Probe]:
    out = []
    for i, p in enumerate(cfg.probes):
        where = f"probes.{i}"
        prompts = load_prompts(p, cfg.base_dir(), where=where)
        checks = resolve_checks(p.checks, where=f"{where}.checks")
        out.append(Probe(p, endpoints[p.name], prompts, checks))
    return out


def _collect_jobs(cfg: MonitorConfig) -> list[CollectJob]:
    from gemmawatch.collectors.telemetry import PrometheusCollector, TelemetrySampler, default_collectors

    def sampler(collectors: list[Any], every: float) -> TelemetrySampler:
        # Never started: the monitor calls sample_once() on its own schedule.
        return TelemetrySampler(collectors, interval_s=every, sink=lambda _rows: None, host=cfg.host)

    jobs = []
    for i, s in enumerate(cfg.scrapes):
        try:
            labels = {**s.labels, "scrape": s.name}
            collector = PrometheusCollector(s.url, allow=s.allow, timeout_s=s.timeout_s, labels=labels)
        except GemmawatchError as exc:
            raise ConfigError(f"scrapes.{i}: {one_line(str(exc))}") from exc
        jobs.append(CollectJob(s.name, sampler([collector], s.every), IntervalSchedule(s.every), kind="scrape"))
    if cfg.telemetry.enabled:
        every = cfg.telemetry.every
        jobs.append(CollectJob("host", sampler(default_collectors(), every), IntervalSchedule(every)))
    return jobs


def _sql_store_factory(cfg: MonitorConfig, db_url: str | None) -> StoreFactory:
    from gemmawatch.storage.engine import get_engine

    rules: list[Any] = []
    routes: Mapping[str, Sequence[str]] = {}
    if cfg.alerts.enabled:
        rules, routes = parse_alerting(cfg.alerts.rules, cfg.notifications, source=cfg.source or "monitor.yaml")
    engine = get_engine(db_url)  # an unreachable database at start is a user error: fail now

    def factory(run_config: dict[str, Any], targets: list[TargetInfo]) -> Store:
        return SqlStore.open(
            engine,
            host=cfg.host,
            config=run_config,
            targets=targets,
            label=cfg.label,
            alerts=cfg.alerts.enabled,
            rules=rules,
            routes=routes,
        )

    return factory


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def stored_config(cfg: MonitorConfig) -> dict[str, Any]:
    """The config as stored with the monitor's run: no database URL, no credentials in URLs."""
    from gemmawatch.alerts.notify import redact_url

    data = cfg.model_dump(mode="json", exclude={"database"})
    for scrape in data["scrapes"]:
        scrape["url"] = _without_userinfo(scrape["url"])
    for target in data["targets"].values():
        if isinstance(target, dict) and target.get("base_url"):
            target["base_url"] = _without_userinfo(target["base_url"])
    data["notifications"] = {
        severity: [redact_url(str(u)) for u in (urls if isinstance(urls, list) else [urls])]
        for severity, urls in data["notifications"].items()
    }
    return data


@contextlib.contextmanager
def _stop_on_signals(monitor: Monitor) -> Iterator[None]:
    """SIGTERM/SIGINT stop the monitor (main thread only; elsewhere signals are not ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        monitor.stop()
        signal.signal(signum, previous[signum])  # a second signal is not caught: it interrupts the flush

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_monitor(
    cfg: MonitorConfig,
    *,
    db_url: str | None = None,
    once: bool = False,
    duration_s: float | None = None,
    progress: Progress = lambda _msg: None,
    store_factory: StoreFactory | None = None,
    loader: Callable[[TargetInfo], Backend] | None = None,
    on_start: Callable[[Monitor], None] | None = None,
) -> MonitorSummary:
    """Run the monitor ``cfg`` describes until a signal, ``duration_s`` or (``once``) one round of jobs.

    ``store_factory`` and ``loader`` replace the database and the backend
    loader (tests); ``on_start`` receives the monitor once it runs (tests stop
    it from another thread).

    Raises:
        ConfigError, UnknownNameError, DatabaseError: before anything runs.
        DatabaseError: the run's final status (or its last rows) could not be stored.
    """
    if duration_s is not None and not duration_s > 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {duration_s:g}. Fix: pass e.g. --duration 3600")
    endpoints, infos = build_endpoints(cfg, loader=loader)
    probes = _probes(cfg, endpoints)
    collect = _collect_jobs(cfg)
    factory = store_factory or _sql_store_factory(cfg, db_url or cfg.database)
    buffer = RowBuffer(cfg.buffer.max_rows)
    metrics = MonitorMetrics(buffer_size=lambda: float(len(buffer)))
    server = MetricsServer(metrics, host=cfg.metrics_host, port=cfg.metrics_port) if cfg.metrics_port else None
    try:
        run_config = {**stored_config(cfg), "metrics_url": server and server.url}
        store = factory(run_config, list(infos.values()))
        monitor = Monitor(
            store=store,
            probes=probes,
            collect=collect,
            buffer=buffer,
            metrics=metrics,
            host=cfg.host,
            flush_every_s=cfg.buffer.flush_every,
            batch_rows=cfg.buffer.batch_rows,
            alerts_every_s=cfg.alerts.every if cfg.alerts.enabled else None,
            grace_s=min(30.0, max([5.0, *(p.timeout_s for p in cfg.probes)])),
            progress=progress,
        )
        monitor.summary.metrics_url = server.url if server else None
        progress(
            f"Monitor run {store.run_id} on {cfg.host}: {len(probes)} probes, {len(cfg.scrapes)} scrapes, "
            f"telemetry {'every ' + format_duration(cfg.telemetry.every) if cfg.telemetry.enabled else 'off'}"
            + (f"; metrics at {server.url}" if server else "")
        )
        summary = _run_and_finish(monitor, store, once=once, duration_s=duration_s, on_start=on_start)
    finally:
        if server is not None:
            server.close()
    progress(
        f"Monitor run {summary.run_id} {summary.status}: {summary.probes_ok} probes ok, "
        f"{summary.probes_failed} failed, {summary.probes_skipped} skipped; "
        f"{summary.rows_written} rows written, {summary.rows_dropped} dropped"
    )
    return summary


def _run_and_finish(
    monitor: Monitor, store: Store, *, once: bool, duration_s: float | None, on_start: Callable[[Monitor], None] | None
) -> MonitorSummary:
    try:
        with _stop_on_signals(monitor):
            if on_start is not None:
                on_start(monitor)
            summary = monitor.run(once=once, duration_s=duration_s)
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            store.finish("failed", reason[:500])
        raise
    unwritten = summary.rows_unwritten
    try:
        if unwritten:
            raise DatabaseError(f"{unwritten} rows could not be written ({monitor.flusher.last_error})")
        store.finish("completed")
    except Exception as exc:
        summary.status = "failed"
        with contextlib.suppress(Exception):
            store.finish("failed", one_line(str(exc))[:500])
        raise DatabaseError(
            f"Monitor run {summary.run_id} stopped but could not store its end: {one_line(str(exc))[:300]}. "
            "Fix: check that the database is reachable; the run stays 'running' or 'failed' in it"
        ) from exc
    summary.status = "completed"
    return summary
