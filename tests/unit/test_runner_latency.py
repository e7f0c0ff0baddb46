"""Latency-probe arithmetic on hand-made GenerationResults (vLLM definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

import gemmawatch
from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult
from gemmawatch.evals.latency import latency_metrics, latency_samples, run_latency_probe
from gemmawatch.evals.stats import wilson_interval

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _ok(e2e: float, ttft: float, tokens: int, itl: Sequence[float], tpot: float | None = None) -> GenerationResult:
    return GenerationResult(
        text="x" * tokens,
        input_tokens=7,
        output_tokens=tokens,
        token_source="tokenizer",
        started_at=T0,
        ttft_s=ttft,
        e2e_s=e2e,
        itl_s=list(itl),
        tpot_s=tpot,
    )


def _failed() -> GenerationResult:
    return GenerationResult(
        text="",
        input_tokens=7,
        output_tokens=0,
        token_source="tokenizer",
        started_at=T0,
        e2e_s=0.05,
        error="CUDA out of memory",
        error_class="OutOfMemoryError",
    )


# E2E 1.0/2.0/0.4 s; TTFT 0.6/0.8/0.4 s; 5/4/1 tokens; one failure.
RESULTS = [
    _ok(1.0, 0.6, 5, [0.1, 0.1, 0.1, 0.1]),
    _ok(2.0, 0.8, 4, [0.4, 0.4, 0.4]),
    _ok(0.4, 0.4, 1, []),
    _failed(),
]


def _by_metric(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in rows}


def test_known_values() -> None:
    m = _by_metric(latency_metrics(RESULTS, max_new_tokens=32))
    assert m["e2e_s_p50"]["value"] == pytest.approx(1.0)
    assert m["e2e_s_p95"]["value"] == pytest.approx(1.9)  # numpy linear: 1.0 + 0.9 * (2.0 - 1.0)
    assert m["e2e_s_max"]["value"] == pytest.approx(2.0)
    assert m["ttft_s_p50"]["value"] == pytest.approx(0.6)
    assert m["ttft_s_p95"]["value"] == pytest.approx(0.78)
    # TPOT excludes the first token: (1.0-0.6)/4 = 0.1 and (2.0-0.8)/3 = 0.4; the 1-token request has none.
    # (E2E / tokens would give 0.2 and 0.5.)
    assert m["tpot_s_mean"]["value"] == pytest.approx(0.25)
    assert m["tpot_s_mean"]["n"] == 2
    # ITL pools every gap: four 0.1 s and three 0.4 s -> median 0.1.
    assert m["itl_s_p50"]["value"] == pytest.approx(0.1)
    assert m["itl_s_p50"]["n"] == 7
    # Per-request tokens/s: 5/1.0, 4/2.0, 1/0.4 -> mean (5 + 2 + 2.5) / 3.
    assert m["output_tokens_per_s_mean"]["value"] == pytest.approx(9.5 / 3)
    assert m["success_rate"]["value"] == pytest.approx(0.75)
    assert m["success_rate"]["n"] == 4
    assert (m["success_rate"]["ci_low"], m["success_rate"]["ci_high"]) == wilson_interval(3, 4)
    assert m["e2e_s_p50"]["n"] == 3  # failed requests have no latency


def test_rows_have_storage_shape_direction_and_provenance() -> None:
    rows = latency_metrics(RESULTS, max_new_tokens=16)
    assert {r["metric"] for r in rows} == {
        "e2e_s_p50", "e2e_s_p95", "e2e_s_max", "ttft_s_p50", "ttft_s_p95",
        "tpot_s_mean", "itl_s_p50", "output_tokens_per_s_mean", "success_rate",
    }  # fmt: skip
    for r in rows:
        assert r["task"] == "latency" and r["filter"] == "none"
        assert r["producer"] == "gemmawatch.latency" and r["producer_version"] == gemmawatch.__version__
        assert r["details"]["definition"] == "vLLM benchmark_serving" and r["details"]["max_new_tokens"] == 16
        assert r["higher_is_better"] is (r["metric"] in {"output_tokens_per_s_mean", "success_rate"})
        assert r["ci_low"] is not None and r["ci_high"] is not None
        assert r["ci_low"] <= r["ci_high"]


def test_mean_cis_bracket_the_value() -> None:
    m = _by_metric(latency_metrics(RESULTS, max_new_tokens=32))
    for name in ("tpot_s_mean", "output_tokens_per_s_mean", "success_rate", "e2e_s_p50"):
        assert m[name]["ci_low"] <= m[name]["value"] <= m[name]["ci_high"], name


def test_backend_tpot_is_used_when_given() -> None:
    rows = latency_metrics([_ok(1.0, 0.5, 3, [0.2, 0.3], tpot=0.123)], max_new_tokens=8)
    assert _by_metric(rows)["tpot_s_mean"]["value"] == pytest.approx(0.123)


def test_all_failed_leaves_only_success_rate() -> None:
    rows = latency_metrics([_failed(), _failed()], max_new_tokens=8)
    assert [r["metric"] for r in rows] == ["success_rate"]
    assert rows[0]["value"] == 0.0 and rows[0]["ci_low"] == 0.0 and rows[0]["ci_high"] > 0.0


def test_single_request_has_degenerate_intervals() -> None:
    m = _by_metric(latency_metrics([_ok(1.0, 0.2, 3, [0.4, 0.4])], max_new_tokens=8))
    assert m["e2e_s_p50"]["ci_low"] == m["e2e_s_p50"]["ci_high"] == 1.0


def test_samples() -> None:
    prompts = ["a", "b", "c", "d"]
    rows = latency_samples(prompts, RESULTS)
    assert [r["doc_id"] for r in rows] == [0, 1, 2, 3]
    first, _, third, failed = rows
    assert first["task"] == "latency" and first["prompt"] == "a" and first["output"] == "xxxxx"
    assert first["latency_s"] == 1.0 and first["ttft_s"] == 0.6 and first["tpot_s"] == pytest.approx(0.1)
    assert first["input_tokens"] == 7 and first["output_tokens"] == 5 and first["token_source"] == "tokenizer"
    assert first["scores"]["success"] == 1.0 and first["scores"]["output_tokens_per_s"] == pytest.approx(5.0)
    assert first["scores"]["itl_s_mean"] == pytest.approx(0.1)
    assert first["started_at"] == T0 and first["error"] is None
    assert third["tpot_s"] is None  # one token: no TPOT
    assert failed["error"] == "OutOfMemoryError: CUDA out of memory"
    assert failed["latency_s"] is None and failed["scores"] == {"success": 0.0}


class FakeBackend:
    """Scripted stream(): one result per call; a scripted exception is raised instead."""

    def __init__(self, script: list[GenerationResult | Exception]) -> None:
        self.script = script
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        item = self.script[len(self.requests) - 1]
        if isinstance(item, Exception):
            raise item
        return item


def test_probe_warms_up_then_streams_each_prompt_in_order() -> None:
    warm = _ok(9.0, 9.0, 1, [])  # a slow first call must not count
    backend = FakeBackend([warm, RESULTS[0], RuntimeError("boom\nsecond line"), RESULTS[1]])
    messages: list[str] = []
    metrics, samples = run_latency_probe(
        backend,  # type: ignore[arg-type]
        ["p1", "p2", "p3"],
        max_new_tokens=12,
        progress=messages.append,
    )
    assert [r.prompt for r in backend.requests] == ["p1", "p1", "p2", "p3"]
    assert all(r.max_new_tokens == 12 and r.temperature == 0.0 and not r.stop for r in backend.requests)
    m = _by_metric(metrics)
    assert m["e2e_s_max"]["value"] == 2.0  # the 9 s warm-up is excluded
    assert m["success_rate"]["value"] == pytest.approx(2 / 3)
    assert samples[1]["error"] == "RuntimeError: boom second line"
    assert messages == ["Latency probe 1/3...", "Latency probe 2/3...", "Latency probe 3/3..."]


def test_probe_with_no_prompts() -> None:
    assert run_latency_probe(FakeBackend([]), []) == ([], [])  # type: ignore[arg-type]


def test_itl_interval_resamples_requests_not_gaps() -> None:
    """Correlated gaps: the request-level bootstrap interval is wider than a naive one."""
    from gemmawatch.evals.stats import bootstrap_stat_ci, percentile_stat

    rng = np.random.default_rng(0)
    results = [_ok(1.0, 0.1, 21, list(np.full(20, base) + rng.normal(0, 0.001, 20))) for base in (0.05, 0.2, 0.1, 0.3)]
    row = _by_metric(latency_metrics(results, max_new_tokens=32))["itl_s_p50"]
    gaps = [g for r in results for g in r.itl_s]
    naive = bootstrap_stat_ci(gaps, percentile_stat(50))
    assert row["details"]["ci_method"] == "bootstrap over requests"
    assert (row["ci_high"] - row["ci_low"]) > (naive[1] - naive[0])
