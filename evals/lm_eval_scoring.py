"""``gemmawatch eval --tasks ... --scorers ...``: quality scorers on the generations of an lm-eval run.

lm-eval computes its own metrics; this adds gemmawatch's quality scorers (ROUGE-L,
token F1, repetition...) to the ``generate_until`` documents of the same run, so both
are stored, in the same transaction, from the same outputs. Loglikelihood and
multiple-choice tasks generate no text and are left alone.

What each scorer reads: the stored output (the response after the task's first
lm-eval filter, the one :func:`gemmawatch.evals.lm_eval_results.sample_rows` stores),
the document's target as lm-eval logged it (a list of targets counts as accepted
answers), the full prompt lm-eval sent (few-shot examples included), and
``output_tokens``/``max_new_tokens`` (the task's ``max_gen_toks``) as context.

Stored under the filter ``quality`` so that scorer names never collide with lm-eval's
metrics of the same name (lm-eval's ``exact_match`` and the scorer ``exact_match``
differ): each sample gets ``scores["<scorer>,quality"]``, each task a metric row
``(task, <scorer>, "quality")`` from :func:`gemmawatch.evals.quality.metric_row` (n, CI,
producer, version, args). ``gemmawatch compare`` pairs them like any lm-eval filter;
``--max-drop`` names them ``task/<scorer>[quality]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gemmawatch.evals.quality import Reference, Scorer, metric_row, score_many

__all__ = ["QUALITY_FILTER", "score_generations"]

#: The metric filter (and sample score suffix) of quality scorer results on lm-eval runs.
QUALITY_FILTER = "quality"


def _reference(target: Any) -> Reference:
    if target is None:
        return None
    if isinstance(target, list | tuple):
        return [str(t) for t in target]
    return str(target)


def _max_gen_toks(config: Mapping[str, Any]) -> int | None:
    kwargs = config.get("generation_kwargs") or {}
    value = kwargs.get("max_gen_toks") if isinstance(kwargs, Mapping) else None
    return int(value) if isinstance(value, int | float) else None


def score_generations(
    raw: Mapping[str, Any], samples: Sequence[dict[str, Any]], scorers: Sequence[Scorer]
) -> list[dict[str, Any]]:
    """Score the ``generate_until`` samples of an lm-eval run; returns the metric rows.

    ``raw`` is lm-eval's results dict (``EvalOutcome.raw``: configs, versions, logged
    samples with their targets); ``samples`` are the run's sample rows, whose ``scores``
    get one ``"<scorer>,quality"`` key per scorer (in place). Tasks with no generations
    give no rows.
    """
    if not scorers:
        return []
    configs = raw.get("configs", {})
    generating = {t for t, c in configs.items() if c.get("output_type", "generate_until") == "generate_until"}
    targets = {
        (task, int(s["doc_id"])): s.get("target")
        for task, logged in raw.get("samples", {}).items()
        if task in generating
        for s in logged
    }
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in samples:
        if row["task"] in generating and (row["task"], int(row["doc_id"])) in targets:
            by_task.setdefault(row["task"], []).append(row)
    metrics: list[dict[str, Any]] = []
    for task, rows in by_task.items():
        limit = _max_gen_toks(configs.get(task, {}))
        contexts = [
            {k: v for k, v in (("output_tokens", r.get("output_tokens")), ("max_new_tokens", limit)) if v is not None}
            for r in rows
        ]
        references = [_reference(targets[(task, int(r["doc_id"]))]) for r in rows]
        version = raw.get("versions", {}).get(task)
        for scorer in scorers:
            results = score_many(
                scorer, [r["output"] for r in rows], references, prompts=[r["prompt"] for r in rows], contexts=contexts
            )
            for row, result in zip(rows, results, strict=True):
                row["scores"][f"{scorer.name},{QUALITY_FILTER}"] = result.value
            metric = metric_row(task, scorer, results, filter=QUALITY_FILTER)
            if metric is not None:
                metric["task_version"] = None if version is None else str(version)
                metric["details"]["scored_from"] = "lm-eval generate_until outputs (first filter)"
                metrics.append(metric)
    return metrics
