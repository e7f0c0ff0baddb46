"""One evaluation run, end to end: target -> model -> lm-eval + latency probe -> SQL -> alerts.

The run row is created first (status ``running``) so telemetry can point at it;
metrics and samples are written in one transaction together with the final
status, so a crash never leaves a run that looks complete. A failure marks the
run ``failed`` with its one-line error and re-raises for the CLI to report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.config import GemmawatchConfig
from gemmawatch.run_lifecycle import failure_marks_run, measured_backend, open_run

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Default sampling interval of in-run telemetry, in seconds (10 Hz; costs about
#: 0.5% of one core, see benchmarks/telemetry_overhead.py).
DEFAULT_TELEMETRY_INTERVAL_S = 0.1
#: Number of smoke prompts streamed one by one to measure TTFT/TPOT/E2E.
DEFAULT_LATENCY_PROMPTS = 8


@dataclass
class EvalRequest:
    """What to evaluate and how; one request yields one run per target."""

    targets: Sequence[str]
    tasks: Sequence[str]
    include_path: Sequence[Path] = ()
    limit: int | None = None
    batch_size: int = 8
    latency_prompts: int = DEFAULT_LATENCY_PROMPTS
    latency_max_new_tokens: int = 32
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    kind: str = "eval"
    label: str | None = None
    #: Quality scorers applied to the generate_until samples (see gemmawatch.evals.lm_eval_scoring).
    scorers: Sequence[str] = ()
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What happened to one target's run."""

    run_id: int
    target: str
    status: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    #: The stored metric rows, where the caller shows them (dataset runs).
    metrics: list[dict[str, Any]] = field(default_factory=list)


def config_targets(config: GemmawatchConfig) -> dict[str, Any]:
    from gemmawatch.collectors.backends.base import TargetInfo

    return {
        name: TargetInfo(
            name=name,
            backend=t.backend,
            model_id=t.model,
            revision=t.revision,
            dtype=t.dtype,
            quantization=t.quantization,
            options={**t.options, **({"base_url": t.base_url} if t.base_url else {})},
        )
        for name, t in config.targets.items()
    }


def resolve_targets(names: Sequence[str], config: GemmawatchConfig) -> list[Any]:
    """Resolve target names or specs to TargetInfo, failing before anything is loaded."""
    from gemmawatch.collectors.targets import resolve_target

    known = config_targets(config)
    return [resolve_target(name, known) for name in names]


def run_evaluations(
    request: EvalRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> list[RunOutcome]:
    """Evaluate every target of ``request`` in turn and store one run each.

    User errors (unknown target or task, bad YAML, bad database URL) are raised
    before any run is created. A failure during a run marks that run failed and
    is re-raised after the run is stored.
    """
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.evals.runner import resolve_tasks
    from gemmawatch.storage.engine import get_engine

    infos = resolve_targets(request.targets, config)
    config_rules = parse_alert_rules(config.alerts, source=config.source or "gemmawatch.yaml")
    engine = get_engine(db_url)
    resolve_tasks(list(request.tasks), include_path=list(request.include_path))
    notifications = config.notifications
    scorers = _build_scorers(request)  # the last check: a judge scorer may load a model
    try:
        return [_run_one(engine, info, request, config_rules, progress, notifications, scorers) for info in infos]
    finally:
        from gemmawatch.evals.dataset_scoring import close_scorers

        close_scorers(scorers)


def _build_scorers(request: EvalRequest) -> list[Any]:
    """The request's quality scorers (none unless asked for); errors before any run exists."""
    if not request.scorers:
        if request.scorer_options:
            from gemmawatch.errors import ConfigError

            raise ConfigError("Scorer options given without --scorers. Fix: name the scorers with --scorers")
        return []
    from gemmawatch.evals.dataset_scoring import build_scorers

    return build_scorers(list(request.scorers), request.scorer_options)


def evaluate_alerts(
    engine: Any,
    run_id: int,
    config_rules: Sequence[Any],
    progress: Progress,
    notifications: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Store the default and configured rules, evaluate them on a finished run, report each transition."""
    from gemmawatch.alerts.engine import evaluate_run, seed_default_rules, sync_config_rules
    from gemmawatch.storage.engine import session_scope

    with session_scope(engine) as s:
        seed_default_rules(s)
        sync_config_rules(s, config_rules)
        transitions = evaluate_run(s, run_id, notifications=notifications)
    for t in transitions:
        if t.get("new", True) or t.get("state") != "firing":
            progress(f"Alert {t.get('state')}: {t.get('message')}")
        else:
            progress(f"Alert still firing: {t.get('message')}")
    return transitions


def _run_one(
    engine: Any,
    info: Any,
    request: EvalRequest,
    config_rules: list[Any],
    progress: Progress,
    notifications: Mapping[str, Sequence[str]] | None = None,
    scorers: Sequence[Any] = (),
) -> RunOutcome:
    from gemmawatch.evals.latency import LATENCY_TASK, latency_energy_metrics, run_latency_probe
    from gemmawatch.evals.runner import run_lm_eval
    from gemmawatch.evals.suites import smoke_prompts
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import metrics as mq
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import samples as sq
    from gemmawatch.storage.queries import telemetry as teq

    run_config: dict[str, Any] = {
        "tasks": list(request.tasks),
        "include_path": [str(p) for p in request.include_path],
        "limit": request.limit,
        "batch_size": request.batch_size,
        "latency_prompts": request.latency_prompts,
        "latency_max_new_tokens": request.latency_max_new_tokens,
        "telemetry_interval_s": request.telemetry_interval_s,
        "target_options": dict(info.options),
    }
    if scorers:
        from gemmawatch.evals.dataset_scoring import scorer_specs

        run_config["scorers"] = scorer_specs(scorers)
    run_id = open_run(engine, info, kind=request.kind, config=run_config, label=request.label)
    progress(f"Run {run_id}: {info.name} ({info.backend}, {info.dtype or 'default dtype'})")
    with failure_marks_run(engine, run_id, progress):
        with measured_backend(
            engine, run_id, info, telemetry_interval_s=request.telemetry_interval_s, progress=progress
        ) as backend:
            outcome = run_lm_eval(
                backend,
                list(request.tasks),
                include_path=list(request.include_path) or None,
                limit=request.limit,
                batch_size=request.batch_size,
                progress=progress,
            )
            metrics = list(outcome.metrics)
            samples = list(outcome.samples)
            if scorers:
                from gemmawatch.evals.lm_eval_scoring import score_generations

                progress(f"Scoring generations with {', '.join(sc.name for sc in scorers)}...")
                metrics += score_generations(outcome.raw, samples, scorers)
            if request.latency_prompts > 0:
                progress(f"Measuring latency on {request.latency_prompts} streamed prompts...")
                lat_metrics, lat_samples = run_latency_probe(
                    backend,
                    smoke_prompts(request.latency_prompts),
                    max_new_tokens=request.latency_max_new_tokens,
                )
                metrics += lat_metrics
                samples += lat_samples
        # Not store_results: the energy per token is computed from the stored samples in the same transaction.
        with session_scope(engine) as s:
            sq.add_samples(s, run_id, samples)
            if request.latency_prompts > 0:  # where an energy counter exists: joules per generated token
                resources = teq.sample_resources(s, run_id, task=LATENCY_TASK, metrics=())
                metrics += latency_energy_metrics(resources)
            mq.add_metrics(s, run_id, metrics)
            rq.finish_run(s, run_id, status="completed")
    transitions = evaluate_alerts(engine, run_id, config_rules, progress, notifications)
    return RunOutcome(run_id=run_id, target=info.name, status="completed", alerts=transitions)
