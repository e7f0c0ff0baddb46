"""``gemmawatch eval --dataset`` end to end: dataset -> target -> quality scorers -> SQL -> alerts.

Everything the user typed is validated before any run row exists (targets, dataset
file and format options, prompt template, scorers and their options, alert rules).
Each target gets one run of kind ``eval``, created ``running`` so telemetry can point
at it; the items go to the backend in batches (``Backend.generate``: greedy, chat or
plain prompt, ``max_new_tokens``, stop strings), the scorers score every output, and
samples, metrics and the final status are written in one transaction (prompts and
outputs as the config's ``store_text`` says; scorers always read the clear text). A
failure (including every generation failing) marks the run ``failed`` with its
one-line error and re-raises; alerts are evaluated once the run is stored.

Stored shape: see :mod:`gemmawatch.evals.dataset_scoring`. The run's config records the
dataset (format, name, files with their sha256, options, items, limit), the template,
the scorers with their arguments and versions, and the generation settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.config import GemmawatchConfig
from gemmawatch.errors import ConfigError
from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, RunOutcome, evaluate_alerts, resolve_targets
from gemmawatch.run_lifecycle import check_generations, failure_marks_run, measured_backend, open_run, store_results

__all__ = ["DATASET_RUN_KIND", "DatasetRequest", "PreparedDataset", "prepare_dataset", "run_dataset_evals"]

Progress = Callable[[str], None]

#: Run kind of a dataset evaluation (the same as an lm-eval run: both are quality evaluations).
DATASET_RUN_KIND = "eval"


@dataclass
class DatasetRequest:
    """One ``gemmawatch eval --dataset`` invocation; one run per target.

    ``format`` None picks the format from the path (see
    :func:`gemmawatch.evals.datasets.loading.detect_format`). ``format_options`` are the
    format's keyword options (``prompt_field``...); None values are left out. Every other
    None means "the dataset format's default" (template, chat, scorers, max_new_tokens, stop).
    ``limit`` keeps the first N items of each category.
    """

    targets: Sequence[str]
    dataset: str
    format: str | None = None
    format_options: Mapping[str, Any] = field(default_factory=dict)
    prompt_template: str | None = None
    chat: bool | None = None
    scorers: Sequence[str] | None = None
    scorer_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    max_new_tokens: int | None = None
    stop: Sequence[str] | None = None
    limit: int | None = None
    batch_size: int = 8
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    label: str | None = None


@dataclass
class PreparedDataset:
    """A validated request: the items to run, their rendered prompts, the scorers and what to record."""

    name: str
    format: str
    items: list[Any]
    prompts: list[str]
    scorers: list[Any]
    chat: bool
    max_new_tokens: int
    stop: list[str]
    config: dict[str, Any]
    task_version: str


def prepare_dataset(request: DatasetRequest) -> PreparedDataset:
    """Load and check everything about ``request`` except its targets; nothing is stored.

    Raises:
        UserError: Any bad input (file, format, option, template, scorer, limit), one line.
    """
    from gemmawatch.evals.dataset_scoring import build_scorers, check_template, render_prompt, scorer_specs
    from gemmawatch.evals.datasets.loading import detect_format, limit_per_category, load_dataset

    if request.batch_size < 1 or (request.max_new_tokens is not None and request.max_new_tokens < 1):
        raise ConfigError("--max-new-tokens and --batch-size must be at least 1. Fix: pass positive numbers")
    fmt = request.format or detect_format(Path(request.dataset).expanduser())
    loaded = load_dataset(request.dataset, fmt, request.format_options)
    items = limit_per_category(loaded.items, request.limit)
    template = loaded.prompt_template if request.prompt_template is None else request.prompt_template
    check_template(template, items)
    scorers = build_scorers(request.scorers, request.scorer_options, loaded.scorers)
    chat = loaded.chat if request.chat is None else request.chat
    max_new_tokens = request.max_new_tokens or loaded.max_new_tokens
    stop = list(loaded.stop if request.stop is None else request.stop)
    digest = hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in sorted(loaded.sources.items())).encode())
    config = {
        "dataset": {
            "format": fmt,
            "name": loaded.name,
            "path": request.dataset,
            "sources": dict(loaded.sources),
            "options": {k: v for k, v in request.format_options.items() if v is not None},
            "items": len(items),
            "items_in_file": len(loaded.items),
            "limit": request.limit,
        },
        "prompt_template": template,
        "chat": chat,
        "scorers": scorer_specs(scorers),
        "generation": {
            "max_new_tokens": max_new_tokens,
            "stop": stop,
            "temperature": 0.0,
            "batch_size": request.batch_size,
        },
        "telemetry_interval_s": request.telemetry_interval_s,
    }
    return PreparedDataset(
        name=loaded.name,
        format=fmt,
        items=items,
        prompts=[render_prompt(template, item) for item in items],
        scorers=scorers,
        chat=chat,
        max_new_tokens=max_new_tokens,
        stop=stop,
        config=config,
        task_version=digest.hexdigest()[:16],
    )


def run_dataset_evals(
    request: DatasetRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> list[RunOutcome]:
    """Evaluate every target of ``request`` on its dataset and store one run of kind ``eval`` each."""
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.evals.dataset_scoring import close_scorers
    from gemmawatch.evals.safety.storage_policy import TextPolicy
    from gemmawatch.storage.engine import get_engine

    infos = resolve_targets(request.targets, config)
    prepared = prepare_dataset(request)
    try:
        config_rules = parse_alert_rules(config.alerts, source=config.source or "gemmawatch.yaml")
        text_policy = TextPolicy(config.store_text)
        engine = get_engine(db_url)
        outcomes = []
        for info in infos:
            outcome = _run_one(engine, info, request, prepared, text_policy, progress)
            outcome.alerts = evaluate_alerts(engine, outcome.run_id, config_rules, progress, config.notifications)
            outcomes.append(outcome)
        return outcomes
    finally:
        close_scorers(prepared.scorers)


def _run_one(
    engine: Any,
    info: Any,
    request: DatasetRequest,
    prepared: PreparedDataset,
    text_policy: Any,
    progress: Progress,
) -> RunOutcome:
    run_config = {**prepared.config, "target_options": dict(info.options), **text_policy.describe()}
    run_id = open_run(engine, info, kind=DATASET_RUN_KIND, config=run_config, label=request.label)
    progress(f"Run {run_id}: {info.name} on dataset {prepared.name} ({len(prepared.items)} items)")
    with failure_marks_run(engine, run_id, progress):
        with measured_backend(
            engine, run_id, info, telemetry_interval_s=request.telemetry_interval_s, progress=progress
        ) as backend:
            results = _generate(backend, prepared, request.batch_size, progress)
        failed = check_generations(results, info, unit="items")
        samples, metrics = _score(prepared, results, progress)
        store_results(engine, run_id, samples, metrics, text_policy=text_policy)  # scored above, on the clear text
    if failed:
        progress(f"{failed} of {len(results)} generations failed; they are stored with their error and not scored")
    return RunOutcome(run_id=run_id, target=info.name, status="completed", metrics=metrics)


def _generate(backend: Any, prepared: PreparedDataset, batch_size: int, progress: Progress) -> list[Any]:
    """Answer every item, ``batch_size`` at a time (greedy)."""
    from gemmawatch.collectors.backends.base import GenerationRequest

    results: list[Any] = []
    for start in range(0, len(prepared.prompts), batch_size):
        batch = [
            GenerationRequest(
                prompt=prompt, max_new_tokens=prepared.max_new_tokens, stop=prepared.stop, chat=prepared.chat
            )
            for prompt in prepared.prompts[start : start + batch_size]
        ]
        results.extend(backend.generate(batch, batch_size=batch_size))
        progress(f"Generated {len(results)}/{len(prepared.prompts)}")
    return results


def _score(
    prepared: PreparedDataset, results: Sequence[Any], progress: Progress
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from gemmawatch.evals.dataset_scoring import dataset_metrics, dataset_samples, score_outputs

    names = [s.name for s in prepared.scorers]
    progress(f"Scoring {len(results)} outputs with {', '.join(names)}...")
    scored = score_outputs(prepared.scorers, prepared.items, results, max_new_tokens=prepared.max_new_tokens)
    samples = dataset_samples(prepared.name, prepared.items, prepared.prompts, results, scored)
    details = {"dataset": prepared.name, "format": prepared.format, "sources": prepared.config["dataset"]["sources"]}
    metrics = dataset_metrics(
        prepared.name,
        prepared.items,
        results,
        prepared.scorers,
        scored,
        details=details,
        task_version=prepared.task_version,
    )
    unscored = sorted(set(names) - {m["metric"] for m in metrics if m["task"] == prepared.name})
    if unscored:
        progress(f"No item could be scored by {', '.join(unscored)} (see the samples' details)")
    return samples, metrics
