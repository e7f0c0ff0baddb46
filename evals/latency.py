"""The latency probe: stream prompts one at a time and summarise TTFT/TPOT/ITL/E2E.

Definitions follow vLLM's ``benchmark_serving`` (and the Backend contract):

* E2E  - request handed to the backend -> last token (``GenerationResult.e2e_s``).
* TTFT - request handed to the backend -> first token.
* TPOT - ``(E2E - TTFT) / (output_tokens - 1)`` per request: the first token is
  excluded, because it carries the prefill. Requests with < 2 tokens have none.
* ITL  - every gap between consecutive tokens, pooled over requests.
* output tokens/s - ``output_tokens / E2E`` per request, then averaged.

Requests run sequentially (concurrency 1), so the figures describe one user, not a
loaded server. Like vLLM's benchmark, one uncounted warm-up request runs first:
the first call on a fresh model pays one-off costs (kernel selection, allocator
growth) that would otherwise dominate p95/max with only a handful of prompts.

Each metric carries ``n`` and a 95 % interval: bootstrap of the statistic itself
for times (request-level resampling for ITL, whose gaps are correlated within a
request) and Wilson for the success rate. A metric with no observations (e.g.
TTFT when every request failed) is left out rather than stored as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

import gemmawatch
from gemmawatch.errors import one_line
from gemmawatch.evals import stats

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend, GenerationResult

__all__ = [
    "LATENCY_TASK",
    "PRODUCER",
    "latency_energy_metrics",
    "latency_metrics",
    "latency_samples",
    "run_latency_probe",
]

LATENCY_TASK = "latency"
PRODUCER = "gemmawatch.latency"
DEFINITION = "vLLM benchmark_serving"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Spec:
    """One latency metric: which per-request values, which statistic, which direction."""

    metric: str
    statistic: str  # "p50", "p95", "max", "mean"
    source: str  # "e2e", "ttft", "tpot", "itl", "tokens_per_s"
    higher_is_better: bool
    unit: str


_SPECS = (
    _Spec("e2e_s_p50", "p50", "e2e", False, "s"),
    _Spec("e2e_s_p95", "p95", "e2e", False, "s"),
    _Spec("e2e_s_max", "max", "e2e", False, "s"),
    _Spec("ttft_s_p50", "p50", "ttft", False, "s"),
    _Spec("ttft_s_p95", "p95", "ttft", False, "s"),
    _Spec("tpot_s_mean", "mean", "tpot", False, "s"),
    _Spec("itl_s_p50", "p50", "itl", False, "s"),
    _Spec("output_tokens_per_s_mean", "mean", "tokens_per_s", True, "tokens/s"),
)


def _stat_fn(statistic: str) -> stats.StatFn:
    if statistic == "mean":
        return np.mean
    if statistic == "max":
        return np.max
    return stats.percentile_stat(float(statistic[1:]))


def request_tpot(result: GenerationResult) -> float | None:
    """TPOT of one request: the backend's value, else computed from E2E/TTFT/tokens."""
    if result.tpot_s is not None:
        return result.tpot_s
    if result.ttft_s is None or result.output_tokens < 2:
        return None
    return (result.e2e_s - result.ttft_s) / (result.output_tokens - 1)


def _tokens_per_s(result: GenerationResult) -> float | None:
    return result.output_tokens / result.e2e_s if result.e2e_s > 0 else None


def _per_request(results: Sequence[GenerationResult], source: str) -> list[float]:
    ok = [r for r in results if r.error is None]
    if source == "e2e":
        return [r.e2e_s for r in ok]
    if source == "ttft":
        return [r.ttft_s for r in ok if r.ttft_s is not None]
    if source == "tpot":
        return [v for r in ok if (v := request_tpot(r)) is not None]
    if source == "tokens_per_s":
        return [v for r in ok if (v := _tokens_per_s(r)) is not None]
    raise ValueError(f"unknown latency source {source!r}")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _row(metric: str, value: float, lo: float, hi: float, n: int, hib: bool, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": LATENCY_TASK,
        "metric": metric,
        "filter": "none",
        "value": float(value),
        "stderr": None,
        "ci_low": _finite(lo),
        "ci_high": _finite(hi),
        "n": n,
        "higher_is_better": hib,
        "producer": PRODUCER,
        "producer_version": gemmawatch.__version__,
        "task_version": None,
        "details": details,
    }


def latency_metrics(results: Sequence[GenerationResult], *, max_new_tokens: int) -> list[dict[str, Any]]:
    """MetricResult rows (task ``latency``) for streamed results; see the module docstring."""
    base = {"definition": DEFINITION, "max_new_tokens": max_new_tokens, "concurrency": 1, "warmup_requests": 1}
    rows: list[dict[str, Any]] = []
    for spec in _SPECS:
        details = {**base, "statistic": spec.statistic, "unit": spec.unit, "ci_method": "bootstrap"}
        fn = _stat_fn(spec.statistic)
        if spec.source == "itl":
            clusters = [list(r.itl_s) for r in results if r.error is None and r.itl_s]
            values = [gap for c in clusters for gap in c]
            if not values:
                continue
            lo, hi = stats.bootstrap_cluster_stat_ci(clusters, fn)
            details["ci_method"] = "bootstrap over requests"
        else:
            values = _per_request(results, spec.source)
            if not values:
                continue
            lo, hi = stats.bootstrap_stat_ci(values, fn)
        value = float(fn(np.asarray(values, dtype=float).reshape(1, -1), axis=1)[0])
        rows.append(_row(spec.metric, value, lo, hi, len(values), spec.higher_is_better, details))
    if results:
        ok = sum(r.error is None for r in results)
        lo, hi = stats.wilson_interval(ok, len(results))
        details = {**base, "statistic": "fraction", "unit": "1", "ci_method": "wilson"}
        rows.append(_row("success_rate", ok / len(results), lo, hi, len(results), True, details))
    return rows


def latency_energy_metrics(resources: Sequence[Mapping[str, Any]], *, seed: int = 0) -> list[dict[str, Any]]:
    """``energy_per_output_token_j`` of the latency task, from per-sample attribution.

    ``resources`` are the latency samples' rows of
    :func:`~gemmawatch.storage.queries.telemetry.sample_resources`. The value is
    the GPU energy of all requests (NVML's energy counter interpolated to each
    request's window, summed over GPUs) divided by their output tokens, a ratio
    of sums; its interval is a bootstrap over requests. Requests without an
    energy figure or without output tokens are left out, so without an energy
    counter (CPU-only machines, pre-Volta GPUs) this returns ``[]``.
    """
    pairs = [
        (float(r["energy_j"]), int(r["output_tokens"]))
        for r in resources
        if r.get("energy_j") is not None and r.get("output_tokens")
    ]
    if not pairs:
        return []
    energy = np.array([e for e, _ in pairs])
    tokens = np.array([t for _, t in pairs], dtype=float)
    value = float(energy.sum() / tokens.sum())
    lo = hi = value
    if len(pairs) > 1:
        idx = np.random.default_rng(seed).integers(0, len(pairs), size=(2000, len(pairs)))
        ratios = energy[idx].sum(axis=1) / tokens[idx].sum(axis=1)
        lo, hi = (float(q) for q in np.quantile(ratios, [0.025, 0.975]))
    details = {
        "definition": "GPU energy during the requests (NVML total energy counter, all GPUs) / output tokens",
        "statistic": "ratio of sums",
        "unit": "J/token",
        "ci_method": "bootstrap over requests",
        "energy_j": float(energy.sum()),
        "output_tokens": int(tokens.sum()),
        "concurrency": 1,
    }
    return [_row("energy_per_output_token_j", value, lo, hi, len(pairs), False, details)]


def latency_samples(prompts: Sequence[str], results: Sequence[GenerationResult]) -> list[dict[str, Any]]:
    """Sample rows (task ``latency``), one per streamed prompt."""
    rows = []
    for doc_id, (prompt, r) in enumerate(zip(prompts, results, strict=True)):
        ok = r.error is None
        scores: dict[str, Any] = {"success": 1.0 if ok else 0.0}
        if ok:
            tps = _tokens_per_s(r)
            if tps is not None:
                scores["output_tokens_per_s"] = tps
            if r.itl_s:
                scores["itl_s_mean"] = float(np.mean(r.itl_s))
                scores["itl_s_max"] = float(np.max(r.itl_s))
        rows.append(
            {
                "task": LATENCY_TASK,
                "doc_id": doc_id,
                "prompt": prompt,
                "output": r.text,
                "target": None,
                "scores": scores,
                "latency_s": r.e2e_s if ok else None,
                "ttft_s": r.ttft_s if ok else None,
                "tpot_s": request_tpot(r) if ok else None,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "token_source": r.token_source,
                "error": None if ok else one_line(f"{r.error_class or 'Error'}: {r.error}"),
                "started_at": r.started_at,
            }
        )
    return rows


def _stream_safely(backend: Backend, request: Any) -> GenerationResult:
    """Stream one request; an exception becomes a failed result (the probe keeps going)."""
    from gemmawatch.collectors.backends.base import GenerationResult

    started = datetime.now(UTC)
    try:
        return backend.stream(request)
    except Exception as err:  # backends should return errors, but a probe must not die on one
        return GenerationResult(
            text="",
            input_tokens=0,
            output_tokens=0,
            token_source="tokenizer",
            started_at=started,
            e2e_s=0.0,
            error=one_line(str(err)) or type(err).__name__,
            error_class=type(err).__name__,
        )


def run_latency_probe(
    backend: Backend,
    prompts: list[str],
    *,
    max_new_tokens: int = 32,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stream each prompt in turn (greedy, no stop strings) and return (metrics, samples).

    No stop strings, so every request can run to ``max_new_tokens`` and requests
    stay comparable; EOS still ends a request early.
    """
    from gemmawatch.collectors.backends.base import GenerationRequest

    if not prompts:
        return [], []
    say = progress or (lambda _msg: None)
    _stream_safely(backend, GenerationRequest(prompt=prompts[0], max_new_tokens=max_new_tokens))  # warm-up
    results = []
    for i, prompt in enumerate(prompts, start=1):
        say(f"Latency probe {i}/{len(prompts)}...")
        results.append(_stream_safely(backend, GenerationRequest(prompt=prompt, max_new_tokens=max_new_tokens)))
    return latency_metrics(results, max_new_tokens=max_new_tokens), latency_samples(prompts, results)
