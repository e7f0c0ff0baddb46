"""Turning an lm-eval results dict into gemmawatch MetricResult/Sample rows and provenance.

Works on the dict ``lm_eval.simple_evaluate(..., log_samples=True)`` returns, live
or after a JSON round trip (tuples then arrive as lists), so it is unit-tested on
a results file captured from a real run.

Aggregates are lm-eval's own numbers, never recomputed: ``value`` and ``stderr``
come from ``res["results"]``. What we add is ``n`` and a confidence interval from
the per-sample values (Wilson for 0/1 metrics, bootstrap otherwise). When a
metric's aggregation is not the mean of its per-sample values (BLEU, perplexity,
F1 over a corpus), there is no honest per-sample interval and ``ci_low``/``ci_high``
stay None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gemmawatch.evals import stats

__all__ = ["PRODUCER", "metric_rows", "provenance", "sample_rows", "task_hashes"]

PRODUCER = "lm-eval"
#: Words in model-argument keys that mark credentials; such keys are never stored.
_SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "auth", "authorization", "credential", "credentials"}
)

Timings = Mapping[tuple[str, int], Any]  # (task, doc_id) -> BatchTiming-like (latency_s, batch_size, started_at)


def _num(x: Any) -> float | None:
    """``x`` as a float when it is a real number (bools count), else None."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float) and math.isfinite(float(x)):
        return float(x)
    return None


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def leaf_tasks(res: Mapping[str, Any], name: str) -> list[str]:
    """The leaf tasks under ``name`` (itself when it is not a group), depth first."""
    subtasks = res.get("group_subtasks", {})
    if name not in subtasks:
        return [name]
    return [leaf for child in subtasks[name] for leaf in leaf_tasks(res, child)]


def _per_sample(res: Mapping[str, Any], task: str, metric: str, filt: str) -> list[float] | None:
    """Numeric per-sample values of ``metric`` under ``filt``; None if any is not a number."""
    values: list[float] = []
    for s in res.get("samples", {}).get(task, []):
        if s.get("filter", "none") != filt or metric not in s:
            continue
        v = _num(s[metric])
        if v is None:
            return None  # e.g. BLEU's (reference, prediction) pairs: no per-sample score
        values.append(v)
    return values


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _ci(
    res: Mapping[str, Any], task: str, metric: str, filt: str, value: float
) -> tuple[float | None, float | None, int | None, str]:
    """(ci_low, ci_high, n, method) for one aggregate, from the per-sample values."""
    per_task = {leaf: _per_sample(res, leaf, metric, filt) for leaf in leaf_tasks(res, task)}
    present = {leaf: v for leaf, v in per_task.items() if v}
    if not present or any(per_task[leaf] is None for leaf in per_task):
        return None, None, None, "none: no per-sample scores"
    pooled = [v for vs in present.values() for v in vs]
    n = len(pooled)
    mean = sum(pooled) / n
    if _close(mean, value):
        lo, hi, _ = stats.ci_for_values(pooled)
        return _finite(lo), _finite(hi), n, "wilson" if stats.is_binary(pooled) else "bootstrap"
    macro = sum(sum(v) / len(v) for v in present.values()) / len(present)
    if len(present) > 1 and _close(macro, value):
        # A group with weight_by_size: false averages subtask means.
        lo, hi = stats.stratified_bootstrap_mean_ci(list(present.values()))
        return _finite(lo), _finite(hi), n, "stratified bootstrap (unweighted group mean)"
    return None, None, n, "none: aggregation is not a mean of per-sample scores"


def _stderr(block: Mapping[str, Any], metric: str, filt: str) -> float | None:
    return _num(block.get(f"{metric}_stderr,{filt}"))


def _higher_is_better(res: Mapping[str, Any], task: str, metric: str) -> bool | None:
    hib = res.get("higher_is_better", {})
    if metric in hib.get(task, {}):
        return bool(hib[task][metric])
    # lm-eval propagates directions to groups incompletely; take it from a subtask.
    for leaf in leaf_tasks(res, task):
        if metric in hib.get(leaf, {}):
            return bool(hib[leaf][metric])
    return None


def _sample_count(res: Mapping[str, Any], task: str) -> int:
    total = 0
    for leaf in leaf_tasks(res, task):
        count = res.get("n-samples", {}).get(leaf, {}).get("effective")
        total += int(count) if count is not None else 0
    return total


def task_hashes(res: Mapping[str, Any]) -> dict[str, str]:
    """Per-task hash of documents, prompts and targets, as lm-eval's EvaluationTracker writes it.

    ``simple_evaluate`` only adds ``task_hashes`` when writing files, so we compute
    the same value: sha256 over the concatenated ``doc_hash + prompt_hash + target_hash``.
    """
    from lm_eval.utils import hash_string

    hashes = {}
    for task, samples in res.get("samples", {}).items():
        parts = [s.get("doc_hash", "") + s.get("prompt_hash", "") + s.get("target_hash", "") for s in samples]
        hashes[task] = hash_string("".join(parts))
    return hashes


def metric_rows(
    res: Mapping[str, Any], *, limit: int | float | None = None, producer_version: str | None = None
) -> list[dict[str, Any]]:
    """One MetricResult row per (task or group, metric, filter) aggregate in ``res["results"]``."""
    version = producer_version or str(res.get("lm_eval_version", "unknown"))
    hashes = res.get("task_hashes") or task_hashes(res)
    rows = []
    for task, block in res.get("results", {}).items():
        leaves = leaf_tasks(res, task)
        is_group = leaves != [task]
        for key, raw in block.items():
            if "," not in key:
                continue  # name, alias, sample_len
            metric, filt = key.split(",", 1)
            value = _num(raw)
            if metric.endswith("_stderr") or value is None:
                continue
            lo, hi, n, method = _ci(res, task, metric, filt, value)
            if n is None:
                n = _sample_count(res, task)
            details: dict[str, Any] = {
                "filter": filt,
                "n_shot": res.get("n-shot", {}).get(task),
                "task_hash": hashes.get(task),
                "limit": limit,
                "ci_method": method,
            }
            if is_group:
                details["subtasks"] = leaves
                details["task_hash"] = {leaf: hashes.get(leaf) for leaf in leaves}
            task_version = res.get("versions", {}).get(task)
            rows.append(
                {
                    "task": task,
                    "metric": metric,
                    "filter": filt,
                    "value": value,
                    "stderr": _stderr(block, metric, filt),
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n,
                    "higher_is_better": _higher_is_better(res, task, metric),
                    "producer": PRODUCER,
                    "producer_version": version,
                    "task_version": None if task_version is None else str(task_version),
                    "details": details,
                }
            )
    return rows


# ---------------------------------------------------------------- samples


def _prompt(arguments: list[Any]) -> str:
    first = arguments[0] if arguments else ""
    return str(first[0]) if isinstance(first, list | tuple) else str(first)


def _strip_delim(text: str, delimiter: str) -> str:
    return text[len(delimiter) :] if delimiter and text.startswith(delimiter) else text


def _target_text(target: Any, choices: list[str] | None) -> str | None:
    if target is None:
        return None
    if choices is not None and isinstance(target, int) and not isinstance(target, bool):
        return choices[target] if 0 <= target < len(choices) else str(target)
    if choices is not None and isinstance(target, list) and all(isinstance(t, int) for t in target):
        return " | ".join(_target_text(t, choices) or "" for t in target)
    return str(target)


def _response(filtered: Any) -> Any:
    # generate_until: one request whose response is a string (or a list of them with repeats).
    if isinstance(filtered, list | tuple) and len(filtered) == 1:
        return filtered[0]
    return filtered


def _output_and_extras(output_type: str, sample: Mapping[str, Any], delimiter: str) -> tuple[str, dict[str, Any], Any]:
    """(output text, extra scores, choices) for one logged sample."""
    filtered = sample.get("filtered_resps", [])
    if output_type == "multiple_choice":
        lls = [float(r[0]) for r in filtered]
        choices = [_strip_delim(str(a[1]), delimiter) for a in sample.get("arguments", [])]
        chosen = max(range(len(lls)), key=lls.__getitem__) if lls else None
        output = choices[chosen] if chosen is not None and chosen < len(choices) else ""
        return output, {"loglikelihoods": lls}, choices
    if output_type == "loglikelihood":
        ll, greedy = _response(filtered)
        return "", {"loglikelihood": float(ll), "is_greedy": float(bool(greedy))}, None
    if output_type == "loglikelihood_rolling":
        return "", {"loglikelihood": float(_response(filtered))}, None
    out = _response(filtered)
    return (out if isinstance(out, str) else str(out)), {}, None


def sample_rows(
    res: Mapping[str, Any],
    *,
    timings: Timings | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> list[dict[str, Any]]:
    """One Sample row per evaluated document.

    With several filters on a task, the first filter's response is the output and
    its metrics keep their plain names; the others' metrics are added as
    ``"metric,filter"``. ``timings`` (from TimedLM) fill ``latency_s`` with the
    wall time of the generation *batch* the document ran in, and
    ``scores["batch_size"]`` with that batch's size.
    """
    rows = []
    timings = timings or {}
    for task, samples in res.get("samples", {}).items():
        config = res.get("configs", {}).get(task, {})
        output_type = config.get("output_type", "generate_until")
        delimiter = str(config.get("target_delimiter", " "))
        by_doc: dict[int, dict[str, Any]] = {}
        for s in samples:
            doc_id = int(s["doc_id"])
            filt = s.get("filter", "none")
            metric_scores = {m: v for m in s.get("metrics", []) if (v := _num(s.get(m))) is not None}
            row = by_doc.get(doc_id)
            if row is not None:  # another filter of a document we have
                row["scores"].update({f"{m},{filt}": v for m, v in metric_scores.items()})
                continue
            output, extras, choices = _output_and_extras(output_type, s, delimiter)
            prompt = _prompt(s.get("arguments", []))
            timing = timings.get((task, doc_id))
            scores = {**metric_scores, **extras}
            if timing is not None:
                scores["batch_size"] = timing.batch_size
            counted = count_tokens is not None
            row = {
                "task": task,
                "doc_id": doc_id,
                "prompt": prompt,
                "output": output,
                "target": _target_text(s.get("target"), choices),
                "scores": scores,
                "latency_s": timing.latency_s if timing is not None else None,
                "ttft_s": None,  # lm-eval generates in batches without streaming: no honest TTFT
                "tpot_s": None,
                "input_tokens": count_tokens(prompt) if count_tokens is not None else None,
                "output_tokens": (
                    count_tokens(output) if count_tokens is not None and output_type == "generate_until" else None
                ),
                "token_source": "tokenizer" if counted else None,
                "error": None,
                "started_at": timing.started_at if timing is not None else None,
            }
            by_doc[doc_id] = row
        rows += [by_doc[d] for d in sorted(by_doc)]
    return rows


# ---------------------------------------------------------------- provenance


def _secret(key: Any) -> bool:
    words = re.split(r"[^a-z0-9]+", str(key).lower())
    return any(w in _SECRET_WORDS for w in words)


def redact(args: Any) -> Any:
    """Model arguments without credential-like keys: nested mappings, or a "k=v,k=v" string.

    Keys are split into words, so ``api_key``/``hf_token``/``auth_header`` go but
    ``tokenizer``/``max_tokens`` stay. Other values pass through unchanged.
    """
    if isinstance(args, str):
        parts = [p for p in args.split(",") if p]
        return ",".join(p for p in parts if "=" not in p or not _secret(p.split("=", 1)[0]))
    if isinstance(args, Mapping):
        return {k: (v if isinstance(v, str) else redact(v)) for k, v in args.items() if not _secret(k)}
    return args


def provenance(res: Mapping[str, Any], *, extra_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What produced the numbers: versions, task versions/hashes, n-shot, config and date."""
    config = dict(res.get("config", {}))
    if "model_args" in config:
        config["model_args"] = redact(config["model_args"])
    config.update(redact(dict(extra_config or {})))
    date = res.get("date")
    return {
        "lm_eval_version": res.get("lm_eval_version"),
        "transformers_version": res.get("transformers_version"),
        "versions": dict(res.get("versions", {})),
        "task_hashes": dict(res.get("task_hashes") or task_hashes(res)),
        "n-shot": dict(res.get("n-shot", {})),
        "n-samples": dict(res.get("n-samples", {})),
        "group_subtasks": dict(res.get("group_subtasks", {})),
        "config": config,
        "git_hash": res.get("git_hash"),
        "date": datetime.fromtimestamp(float(date), UTC).isoformat() if date is not None else None,
    }
