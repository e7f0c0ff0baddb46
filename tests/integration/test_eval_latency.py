"""The latency probe on the real bundled Gemma (streamed, vLLM definitions)."""

from __future__ import annotations

from typing import Any

import pytest

from gemmawatch.evals.latency import run_latency_probe
from gemmawatch.evals.suites import smoke_prompts

pytestmark = pytest.mark.model


def test_latency_probe_on_gemma(gemma_backend: Any) -> None:
    prompts = smoke_prompts(3)
    metrics, samples = run_latency_probe(gemma_backend, prompts, max_new_tokens=8)
    m = {r["metric"]: r for r in metrics}
    assert m["success_rate"]["value"] == 1.0 and m["success_rate"]["n"] == 3
    for name in ("e2e_s_p50", "e2e_s_p95", "e2e_s_max", "ttft_s_p50", "ttft_s_p95", "output_tokens_per_s_mean"):
        assert m[name]["n"] == 3 and m[name]["value"] > 0, name
        assert m[name]["ci_low"] <= m[name]["ci_high"]
    assert m["ttft_s_p50"]["value"] < m["e2e_s_p50"]["value"]
    assert m["e2e_s_p50"]["value"] <= m["e2e_s_p95"]["value"] <= m["e2e_s_max"]["value"]
    assert [s["prompt"] for s in samples] == prompts
    for s in samples:
        assert s["error"] is None and 1 <= s["output_tokens"] <= 8
        assert 0 < s["ttft_s"] <= s["latency_s"]
        if s["output_tokens"] >= 2:
            # TPOT excludes the first token: (E2E - TTFT) / (tokens - 1).
            expected = (s["latency_s"] - s["ttft_s"]) / (s["output_tokens"] - 1)
            assert s["tpot_s"] == pytest.approx(expected, rel=1e-6)
    if "itl_s_p50" in m:
        assert m["itl_s_p50"]["value"] > 0
