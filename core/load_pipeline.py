"""``gemmawatch bench load`` end to end: target -> profile -> raw events -> SQL -> alerts.

Everything the user typed is validated before the run row exists (profile,
budget, SLO, dataset, target, metrics URLs). The run is created ``running`` so
telemetry can point at it; events, metrics and the final status are written in
one transaction. Ctrl-C or SIGTERM stops sending, marks the requests in flight
``cancelled``, stores what was measured as a ``partial`` run and then exits
130; any other failure stores the run ``failed`` and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gemmawatch.collectors.load.metrics import Slo
from gemmawatch.collectors.load.profiles import Profile
from gemmawatch.collectors.load.runner import Budget
from gemmawatch.config import GemmawatchConfig
from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, evaluate_alerts, resolve_targets
from gemmawatch.provenance import hostname, package_versions
from gemmawatch.run_lifecycle import close_collectors, mark_failed, record_loaded_target

Progress = Callable[[str], None]

#: Distinct built-in prompts generated when the budget does not bound the count.
DEFAULT_POOL = 1024


@dataclass
class LoadTestRequest:
    """One load test as the user asked for it (see ``gemmawatch bench load --help``)."""

    target: str
    profile: Profile
    budget: Budget
    dataset: str | None = None
    prompt_field: str = "prompt"
    output_tokens_field: str | None = None
    input_tokens: int = 128
    output_tokens: int = 64
    seed: int = 0
    slo: Slo | None = None
    ignore_eos: bool = False
    metrics_urls: Sequence[str] = ()
    metrics_allow: Sequence[str] | None = None
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    label: str | None = None

    def config(self) -> dict[str, Any]:
        """What is stored as the run's config (never a secret: URLs and names only)."""
        return {
            "profile": self.profile.as_dict(),
            "budget": self.budget.as_dict(),
            "dataset": self.dataset,
            "prompt_field": self.prompt_field,
            "output_tokens_field": self.output_tokens_field,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "seed": self.seed,
            "slo": self.slo.as_dict() if self.slo else None,
            "ignore_eos": self.ignore_eos,
            "metrics_urls": list(self.metrics_urls),
            "telemetry_interval_s": self.telemetry_interval_s,
        }


@dataclass
class LoadOutcome:
    """A finished (or partial) load test: its run id and the figures reported."""

    run_id: int
    status: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    saturation: dict[str, Any] | None = None
    requests: int = 0

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` payload: headline figures at the top level, then every step."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            **self.headline,
            "steps": self.steps,
            "saturation": self.saturation,
        }


def _prompt_pool(request: LoadTestRequest) -> list[Any]:
    from gemmawatch.collectors.load.prompts import resolve_prompts, schedule

    count = min(request.budget.max_requests or DEFAULT_POOL, DEFAULT_POOL)
    pool = resolve_prompts(
        request.dataset,
        count=count,
        input_tokens=request.input_tokens,
        output_tokens=request.output_tokens,
        prompt_field=request.prompt_field,
        output_tokens_field=request.output_tokens_field,
        seed=request.seed,
    )
    return schedule(pool, request.seed)


def _collectors(request: LoadTestRequest) -> list[Any]:
    from gemmawatch.collectors.telemetry import PrometheusCollector, default_collectors

    extra = [PrometheusCollector(url, allow=request.metrics_allow) for url in request.metrics_urls]
    return [*default_collectors(), *extra]


def _driver(backend: Any, request: LoadTestRequest) -> Any:
    if backend.info.backend == "openai":
        from gemmawatch.collectors.load.http_driver import HttpDriver

        return HttpDriver(backend.info, max_inflight=_inflight(request.profile), ignore_eos=request.ignore_eos)
    from gemmawatch.collectors.load.inprocess_driver import BackendDriver

    return BackendDriver(backend, workers=_inflight(request.profile))


def _inflight(profile: Profile) -> int:
    return profile.max_inflight if profile.open_loop else max(profile.workers, profile.concurrency or 1)


def run_load_test(
    request: LoadTestRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> LoadOutcome:
    """Run one load test against one target and store it as a run of kind ``load``."""
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import targets as tq

    (info,) = resolve_targets([request.target], config)
    config_rules = parse_alert_rules(config.alerts, source=config.source or "gemmawatch.yaml")
    pool = _prompt_pool(request)
    collectors = _collectors(request)  # validates metrics URLs before the run exists
    engine = get_engine(db_url)
    from gemmawatch.collectors.targets import load_backend

    progress(f"Connecting to {info.name}...")
    try:
        # Loaded (or, for a server, reached) before the run exists: an unreachable target stores nothing.
        backend = load_backend(info)
    except BaseException:
        close_collectors(collectors)
        raise
    with session_scope(engine) as s:
        target_id = tq.upsert_target(
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
            s,
            kind="load",
            target_id=target_id,
            config={**request.config(), "target_options": dict(info.options)},
            host=hostname(),
            versions=package_versions(),
            label=request.label,
        )
    progress(f"Run {run_id}: load test of {info.name} ({request.profile.describe()})")
    try:
        outcome = _execute(engine, run_id, backend, request, pool, collectors, progress)
    except BaseException as exc:
        if not isinstance(exc, _Interrupted):
            mark_failed(engine, run_id, exc, progress)
            raise
        raise KeyboardInterrupt from None
    finally:
        backend.close()
        close_collectors(collectors)
    evaluate_alerts(engine, run_id, config_rules, progress, config.notifications)
    return outcome


class _Interrupted(Exception):
    """The test was cancelled and its partial run is already stored."""


def _execute(
    engine: Any,
    run_id: int,
    backend: Any,
    request: LoadTestRequest,
    pool: list[Any],
    collectors: list[Any],
    progress: Progress,
) -> LoadOutcome:
    from gemmawatch.collectors.load.driver import start_clock
    from gemmawatch.collectors.load.runner import Recorder
    from gemmawatch.collectors.telemetry import ListSink, TelemetrySampler, storage_sink

    record_loaded_target(engine, run_id, backend.info)
    kept = ListSink()
    store = storage_sink(engine)

    def sink(rows: list[dict[str, Any]]) -> None:
        kept(rows)  # kept in memory too: each step's window needs its own readings
        store(rows)

    recorder = Recorder()
    sampler = TelemetrySampler(
        collectors, interval_s=request.telemetry_interval_s, sink=sink, run_id=run_id, host=hostname()
    )
    driver = _driver(backend, request)
    interrupted = False
    with sampler:
        wall_start = datetime.now(UTC)
        clock = start_clock()
        try:
            asyncio.run(_drive(driver, pool, request, clock, recorder, progress))
        except (KeyboardInterrupt, asyncio.CancelledError):
            interrupted = True
            progress("Interrupted: storing the requests measured so far...")
    outcome = _store(engine, run_id, request, recorder, wall_start, kept.rows, interrupted)
    if interrupted:
        progress(
            f"Run {run_id} stored as partial ({outcome.requests} requests). Details: gemmawatch runs show {run_id}"
        )
        raise _Interrupted()
    return outcome


async def _drive(
    driver: Any, pool: list[Any], request: LoadTestRequest, clock: Any, recorder: Any, progress: Progress
) -> None:
    from gemmawatch.collectors.load.metrics import assign_phases, summarize
    from gemmawatch.collectors.load.plan import run_plan
    from gemmawatch.collectors.load.saturation import sweep_rates

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        # SIGTERM ends the test like Ctrl-C does: cancel, mark in-flight requests, store a partial run.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)

    def throughput_of(step: int) -> float:
        events = recorder.step_events(step)
        record = recorder.steps[step]
        window = assign_phases(
            events, warmup_s=request.budget.warmup_s, cooldown_s=request.budget.cooldown_s, start_s=record.started_s
        )
        return summarize(events, window=window, slo=None).request_throughput or 0.0

    try:
        await run_plan(
            driver,
            pool,
            request.profile,
            request.budget,
            clock=clock,
            recorder=recorder,
            seed=request.seed,
            throughput_of=throughput_of,
            rates_between=sweep_rates,
            progress=progress,
        )
    finally:
        await driver.aclose()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)


def _store(
    engine: Any,
    run_id: int,
    request: LoadTestRequest,
    recorder: Any,
    wall_start: datetime,
    telemetry: list[dict[str, Any]],
    interrupted: bool,
) -> LoadOutcome:
    from gemmawatch.collectors.load.results import headline, saturation, summarize_steps
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import load as lq
    from gemmawatch.storage.queries import metrics as mq
    from gemmawatch.storage.queries import runs as rq

    sweep = request.profile.kind == "sweep"
    results = summarize_steps(
        recorder.events,
        recorder.steps,
        request.budget,
        slo=request.slo,
        sweep=sweep,
        wall_start=wall_start,
        telemetry=telemetry,
    )
    knee = saturation(results) if sweep else None
    steps = [r.as_dict() for r in results]
    top = headline(results).as_dict() if results else {}
    status = "partial" if interrupted else "completed"
    error = f"interrupted by the user after {len(recorder.events)} requests" if interrupted else None
    with session_scope(engine) as s:
        lq.add_load_requests(s, run_id, recorder.events)
        mq.add_metrics(s, run_id, [row for r in results for row in r.rows])
        rq.merge_run_config(
            s,
            run_id,
            {"wall_start": wall_start.isoformat(), "steps": steps, "saturation": knee.as_dict() if knee else None},
        )
        rq.finish_run(s, run_id, status=status, error=error)
    return LoadOutcome(
        run_id=run_id,
        status=status,
        steps=steps,
        headline=top,
        saturation=knee.as_dict() if knee else None,
        requests=len(recorder.events),
    )
