"""``gemmawatch safety`` end to end: prompts -> target -> safety checks -> SQL -> alerts.

Everything the user typed is validated before the run row exists (target, suite
or dataset file, checks and their options, alert rules). The run is created
``running`` so telemetry can point at it; the prompts go to the backend in
batches (``Backend.generate``, chat-formatted), the checks score every output,
and samples, metrics and the final status are written in one transaction
(prompts and outputs as the config's ``store_text`` says: clear, redacted or
hashed; the checks always read the clear text). A failure (including every
generation failing) marks the run ``failed`` with its one-line error and
re-raises; alerts are evaluated once the run is stored.

Stored shape (run kind ``safety``): one sample per prompt with task
``safety/<category>``, ``doc_id`` = the item's position in the dataset and
``target`` = its label; metrics of task ``safety`` per category and ``all``.
See :mod:`gemmawatch.evals.safety_metrics` for the scores and rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.config import GemmawatchConfig
from gemmawatch.errors import ConfigError, UserError
from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, evaluate_alerts, resolve_targets
from gemmawatch.run_lifecycle import check_generations, failure_marks_run, measured_backend, open_run, store_results

Progress = Callable[[str], None]

#: Run kind of a safety run.
SAFETY_KIND = "safety"
#: Default suite when neither a suite nor a dataset is given.
DEFAULT_SUITE = "default"


@dataclass
class SafetyRequest:
    """One safety run as the user asked for it (see ``gemmawatch safety --help``).

    Exactly one of ``suite`` and ``dataset`` is used; with neither, the ``default`` suite.
    ``checks`` None means the default checks (those available of refusal, pii, toxicity).
    ``limit`` keeps the first N items of each category.
    """

    target: str
    suite: str | None = None
    dataset: str | None = None
    prompt_field: str | None = None
    label_field: str | None = None
    category_field: str | None = None
    limit: int | None = None
    checks: Sequence[str] | None = None
    check_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    max_new_tokens: int = 64
    batch_size: int = 8
    chat: bool = True
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    label: str | None = None


@dataclass
class SafetyOutcome:
    """A stored safety run: its id, status, metric rows and any alert transitions."""

    run_id: int
    target: str
    status: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    failed_generations: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)


def load_items(request: SafetyRequest) -> Any:
    """The request's dataset (a ``SafetyDataset``); raises UserError on any bad input."""
    from gemmawatch.evals.suites.safety_data import load_dataset, load_suite

    if request.dataset is not None:
        if request.suite is not None:
            raise UserError("--suite and --dataset both given. Fix: pass one of them")
        if not request.prompt_field:
            raise UserError("--dataset needs --prompt-field. Fix: name the field that holds the prompt text")
        return load_dataset(
            Path(request.dataset),
            prompt_field=request.prompt_field,
            label_field=request.label_field,
            category_field=request.category_field,
        )
    extra = [
        opt
        for opt, value in (
            ("--prompt-field", request.prompt_field),
            ("--label-field", request.label_field),
            ("--category-field", request.category_field),
        )
        if value is not None
    ]
    if extra:
        raise UserError(f"{', '.join(extra)} only apply to --dataset. Fix: drop them or pass --dataset PATH")
    return load_suite(request.suite or DEFAULT_SUITE)


def run_safety(
    request: SafetyRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> SafetyOutcome:
    """Run ``request`` against its target and store one run of kind ``safety``."""
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.evals.safety.storage_policy import TextPolicy
    from gemmawatch.evals.safety_metrics import build_checks
    from gemmawatch.evals.suites.safety_data import limit_per_category
    from gemmawatch.storage.engine import get_engine

    if request.max_new_tokens < 1 or request.batch_size < 1:
        raise ConfigError("--max-new-tokens and --batch-size must be at least 1. Fix: pass positive numbers")
    (info,) = resolve_targets([request.target], config)
    dataset = load_items(request)
    items = limit_per_category(dataset.items, request.limit)
    config_rules = parse_alert_rules(config.alerts, source=config.source or "gemmawatch.yaml")
    checks = build_checks(request.checks, request.check_options)
    text_policy = TextPolicy(config.store_text)
    engine = get_engine(db_url)
    run_config = {
        "suite": dataset.name if dataset.kind == "suite" else None,
        "dataset": dataset.name if dataset.kind == "dataset" else None,
        "fields": dataset.fields,
        "suite_sha256": dataset.sha256,
        "items": len(items),
        "limit": request.limit,
        "checks": {c.name: c.version for c in checks},
        "check_options": {k: dict(v) for k, v in request.check_options.items()},
        "max_new_tokens": request.max_new_tokens,
        "batch_size": request.batch_size,
        "chat": request.chat,
        "telemetry_interval_s": request.telemetry_interval_s,
        "target_options": dict(info.options),
        **text_policy.describe(),
    }
    try:
        run_id = open_run(engine, info, kind=SAFETY_KIND, config=run_config, label=request.label)
        progress(f"Run {run_id}: safety of {info.name} on {dataset.name} ({len(items)} prompts)")
        outcome = _execute(engine, run_id, info, request, dataset, items, checks, text_policy, progress)
    finally:
        _close_checks(checks)
    outcome.alerts = evaluate_alerts(engine, outcome.run_id, config_rules, progress, config.notifications)
    return outcome


def _execute(
    engine: Any,
    run_id: int,
    info: Any,
    request: SafetyRequest,
    dataset: Any,
    items: Sequence[Any],
    checks: Sequence[Any],
    text_policy: Any,
    progress: Progress,
) -> SafetyOutcome:
    from gemmawatch.evals.safety_metrics import safety_metrics, safety_samples

    with failure_marks_run(engine, run_id, progress):
        with measured_backend(
            engine, run_id, info, telemetry_interval_s=request.telemetry_interval_s, progress=progress
        ) as backend:
            results = _generate(backend, items, request, progress)
        failed = check_generations(results, info, unit="prompts")
        progress(f"Scoring {len(results)} outputs with {', '.join(c.name for c in checks)}...")
        samples = safety_samples(items, results, checks)
        details = {
            "suite": dataset.name,
            "source": dataset.kind,
            "suite_sha256": dataset.sha256,
            "checks": [c.name for c in checks],
            "versions": {c.name: c.version for c in checks},
            "max_new_tokens": request.max_new_tokens,
            "chat": request.chat,
        }
        metrics = safety_metrics(samples, details=details, task_version=dataset.sha256[:16])
        store_results(engine, run_id, samples, metrics, text_policy=text_policy)  # scored above, on the clear text
    if failed:
        progress(f"{failed} of {len(results)} generations failed; they are stored with their error and not scored")
    return SafetyOutcome(
        run_id=run_id,
        target=info.name,
        status="completed",
        metrics=metrics,
        samples=len(samples),
        failed_generations=failed,
    )


def _generate(backend: Any, items: Sequence[Any], request: SafetyRequest, progress: Progress) -> list[Any]:
    """Answer every item, ``batch_size`` at a time (greedy, chat-formatted unless ``chat`` is off)."""
    from gemmawatch.collectors.backends.base import GenerationRequest

    results: list[Any] = []
    size = request.batch_size
    for start in range(0, len(items), size):
        batch = [
            GenerationRequest(prompt=item.prompt, max_new_tokens=request.max_new_tokens, chat=request.chat)
            for item in items[start : start + size]
        ]
        results.extend(backend.generate(batch, batch_size=size))
        progress(f"Generated {len(results)}/{len(items)}")
    return results


def _close_checks(checks: Sequence[Any]) -> None:
    """Release checks that hold resources (a judge check keeps its model loaded)."""
    for check in checks:
        close = getattr(check, "close", None)
        if callable(close):
            close()
