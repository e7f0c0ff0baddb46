"""Scoring a dataset run: prompt templates, quality scorers on every output, sample and metric rows.

Used by ``gemmawatch eval --dataset`` (:mod:`gemmawatch.dataset_pipeline`); the scorer
helpers (:func:`build_scorers`, :func:`parse_scorer_options`) also serve ``--scorers``
on lm-eval runs.

**Templates.** A prompt template is text with ``{prompt}`` where the item's prompt goes;
``{key}`` for any key of the items' ``context`` inserts that value (text as is, anything
else as JSON). Only ``{name}`` with a plain identifier is a placeholder, so JSON examples
in a template (``{"name": ...}``) are left alone; there is no escaping.

**Stored samples** (one per item, in dataset order): task ``<name>`` or
``<name>/<category>``; ``prompt`` = the rendered template (what the model was sent,
before any chat formatting); ``target`` = the reference (JSON text of a list of accepted
answers); ``scores`` = ``{scorer name: value}`` (``None`` where a scorer could not score),
plus ``details`` = ``{scorer name: details}`` for details of at most
:data:`MAX_DETAIL_CHARS` characters of JSON, and ``meta`` = the item's meta (its own id).
Failed generations keep their error and get no scores.

**Metrics**, one row per scorer per category (task ``<name>/<category>``) and over all
items (task ``<name>``, with ``details.subtasks`` = the category tasks, the shape of an
lm-eval group, so ``gemmawatch compare`` pools the categories' pairs for it), each from
:func:`gemmawatch.evals.quality.metric_row`: mean, ``n`` (items scored), Wilson or
bootstrap 95 % CI, producer = scorer, version and args. A scorer that scored no item of a
group stores no row for it (the reasons are counted on the rows that exist).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality import Scorer, ScoreResult, get_scorer, metric_row, score_many

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import GenerationResult
    from gemmawatch.evals.datasets.base import DatasetItem

__all__ = [
    "MAX_DETAIL_CHARS",
    "Scored",
    "build_scorers",
    "check_template",
    "close_scorers",
    "dataset_metrics",
    "dataset_samples",
    "parse_scorer_options",
    "render_prompt",
    "score_outputs",
    "scorer_specs",
    "task_of",
]

#: A scorer's details are stored with the sample when their JSON is at most this long.
MAX_DETAIL_CHARS = 500
#: Per scorer name, one result per item (None where the generation failed).
Scored = dict[str, list[ScoreResult | None]]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Context keys that would collide with ``Scorer.score``'s own parameters.
_RESERVED_CONTEXT = frozenset({"prediction", "reference", "prompt"})


# ---------------------------------------------------------------- templates


def check_template(template: str, items: Sequence[DatasetItem]) -> None:
    """Raise ConfigError unless ``template`` has ``{prompt}`` and every item has every other placeholder."""
    if "{prompt}" not in template:
        raise ConfigError(
            f"Prompt template {template[:60]!r} has no {{prompt}}. Fix: put {{prompt}} where the item's prompt goes"
        )
    wanted = set(_PLACEHOLDER.findall(template)) - {"prompt"}
    for item in items:
        missing = sorted(wanted - set(item.context))
        if missing:
            available = ", ".join(["prompt", *sorted(item.context)])
            raise ConfigError(
                f"Prompt template uses {{{missing[0]}}}, which item {item.doc_id} does not have "
                f"(available: {available}). Fix: use only those placeholders"
            )


def render_prompt(template: str, item: DatasetItem) -> str:
    """``template`` with ``{prompt}`` and ``{context key}`` placeholders filled for ``item``."""
    values = {"prompt": item.prompt}
    for key, value in item.context.items():
        values[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# ---------------------------------------------------------------- scorers


def parse_scorer_options(values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["rouge_l.use_stemmer=true"]`` -> ``{"rouge_l": {"use_stemmer": True}}`` (numbers and booleans typed).

    Raises:
        ConfigError: An entry not shaped ``SCORER.KEY=VALUE``.
    """
    from gemmawatch.evals.safety_metrics import parse_check_options

    return parse_check_options(values, what="scorer", example="rouge_l.use_stemmer=true")


def build_scorers(
    names: Sequence[str] | None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    defaults: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> list[Scorer]:
    """Build the scorers of a run: ``names`` (None: the dataset's ``defaults``) with ``options`` on top.

    A default's own arguments (a format's tuned settings) apply when the scorer is used,
    whether by default or named; ``options`` override them key by key.

    Raises:
        ConfigError: An empty selection, a name given twice, options for a scorer that
            is not selected, or arguments a scorer does not take.
        UnknownNameError: ``Unknown quality scorer 'x'. Available: ...``.
        MissingDependencyError: A scorer whose optional dependency is missing.
    """
    options = {k: dict(v) for k, v in (options or {}).items()}
    default_args = {name: dict(args) for name, args in defaults}
    wanted = list(names) if names is not None else list(default_args)
    if not wanted:
        raise ConfigError("No quality scorers selected. Fix: pass --scorers, e.g. --scorers exact_match,token_f1")
    duplicates = sorted({n for n in wanted if wanted.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Scorer {', '.join(duplicates)} given twice in --scorers. Fix: list each scorer once")
    stray = sorted(set(options) - set(wanted))
    if stray:
        raise ConfigError(
            f"Options given for scorer {', '.join(stray)}, which is not selected. Fix: add it to --scorers"
        )
    return [get_scorer(name, **{**default_args.get(name, {}), **options.get(name, {})}) for name in wanted]


def scorer_specs(scorers: Sequence[Scorer]) -> list[dict[str, Any]]:
    """``[{"name", "version", "args"}, ...]``: enough to rebuild every scorer, for the run's config."""
    return [{"name": s.name, "version": s.version, "args": dict(s.args)} for s in scorers]


def close_scorers(scorers: Sequence[Scorer]) -> None:
    """Release scorers that hold resources (the judge keeps its model loaded)."""
    for scorer in scorers:
        close = getattr(scorer, "close", None)
        if callable(close):
            close()


# ---------------------------------------------------------------- scoring


def score_outputs(
    scorers: Sequence[Scorer],
    items: Sequence[DatasetItem],
    results: Sequence[GenerationResult],
    *,
    max_new_tokens: int,
) -> Scored:
    """Every scorer on every successful output (one batch per scorer).

    Scorers read the item's prompt (before the template), its reference and its context
    plus ``output_tokens`` and ``max_new_tokens``.
    """
    ok = [i for i, r in enumerate(results) if r.error is None]
    predictions = [results[i].text for i in ok]
    references = [items[i].reference for i in ok]
    prompts: list[str | None] = [items[i].prompt for i in ok]
    contexts = [
        {
            **{k: v for k, v in items[i].context.items() if k not in _RESERVED_CONTEXT},
            "output_tokens": results[i].output_tokens,
            "max_new_tokens": max_new_tokens,
        }
        for i in ok
    ]
    scored: Scored = {}
    for scorer in scorers:
        batch = score_many(scorer, predictions, references, prompts=prompts, contexts=contexts) if ok else []
        column: list[ScoreResult | None] = [None] * len(results)
        for i, result in zip(ok, batch, strict=True):
            column[i] = result
        scored[scorer.name] = column
    return scored


def task_of(name: str, item: DatasetItem) -> str:
    """The stored task of ``item``: ``<name>/<category>``, or ``<name>`` without a category."""
    return name if item.category is None else f"{name}/{item.category}"


def dataset_samples(
    name: str,
    items: Sequence[DatasetItem],
    prompts: Sequence[str],
    results: Sequence[GenerationResult],
    scored: Scored,
) -> list[dict[str, Any]]:
    """Sample rows (see the module docstring), one per item, in item order."""
    rows = []
    for i, (item, prompt, r) in enumerate(zip(items, prompts, results, strict=True)):
        scores: dict[str, Any] = {}
        details: dict[str, Any] = {}
        for scorer_name, column in scored.items():
            result = column[i]
            if result is None:
                continue
            scores[scorer_name] = result.value
            if result.details and len(json.dumps(result.details, default=str)) <= MAX_DETAIL_CHARS:
                details[scorer_name] = result.details
        if details:
            scores["details"] = details
        if item.meta:
            scores["meta"] = dict(item.meta)
        rows.append(
            {
                "task": task_of(name, item),
                "doc_id": item.doc_id,
                "prompt": prompt,
                "output": r.text,
                "target": _target(item.reference),
                "scores": scores,
                **r.sample_columns(),
            }
        )
    return rows


def _target(reference: str | list[str] | None) -> str | None:
    if reference is None or isinstance(reference, str):
        return reference
    return json.dumps(list(reference), ensure_ascii=False)


def dataset_metrics(
    name: str,
    items: Sequence[DatasetItem],
    results: Sequence[GenerationResult],
    scorers: Sequence[Scorer],
    scored: Scored,
    *,
    details: Mapping[str, Any] | None = None,
    task_version: str | None = None,
) -> list[dict[str, Any]]:
    """Metric rows per scorer: per category, then over all items (see the module docstring)."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.category is not None:
            groups.setdefault(task_of(name, item), []).append(i)
    subtasks = list(groups)
    groups[name] = list(range(len(items)))
    rows = []
    for task, indexes in groups.items():
        failed = sum(results[i].error is not None for i in indexes)
        for scorer in scorers:
            column = scored[scorer.name]
            found = [r for i in indexes if (r := column[i]) is not None]
            row = metric_row(task, scorer, found)
            if row is None:
                continue
            row["task_version"] = task_version
            row["details"] = {**row["details"], **(details or {}), "failed_generations": failed}
            if task == name and subtasks:
                row["details"]["subtasks"] = subtasks
            rows.append(row)
    return rows
