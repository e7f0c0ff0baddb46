"""The rows evals produces are accepted by storage as they are (SQLite round trip)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gemmawatch.collectors.backends.base import GenerationResult
from gemmawatch.evals import lm_eval_results as convert
from gemmawatch.evals.latency import latency_metrics, latency_samples
from gemmawatch.evals.timed_lm import BatchTiming

FIXTURE = Path(__file__).parents[1] / "data" / "lm_eval_smoke_limit3.json"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_eval_and_latency_rows_round_trip_through_storage(sqlite_url: str) -> None:
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import metrics as mq
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import samples as sq

    res = json.loads(FIXTURE.read_text())
    timings = {("smoke_gen", 0): BatchTiming(0.5, 3, T0)}
    results = [
        GenerationResult("ab", 5, 2, "tokenizer", T0, ttft_s=0.1, e2e_s=0.3, itl_s=[0.2], tpot_s=0.2),
        GenerationResult("", 5, 0, "tokenizer", T0, e2e_s=0.0, error="boom", error_class="RuntimeError"),
    ]
    metrics = convert.metric_rows(res, limit=3) + latency_metrics(results, max_new_tokens=8)
    samples = convert.sample_rows(res, timings=timings, count_tokens=len) + latency_samples(["p", "q"], results)

    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        run_id = rq.create_run(s, kind="eval", target_id=None, config={}, host="h", versions={})
        assert mq.add_metrics(s, run_id, metrics) == len(metrics)
        assert sq.add_samples(s, run_id, samples) == len(samples)
    with session_scope(engine) as s:
        summary = rq.run_summary(s, run_id)
        assert summary is not None and summary["samples_count"] == len(samples)
        stored = {(m["task"], m["metric"]): m for m in summary["metrics"]}
        acc = stored[("smoke_mc", "acc")]
        assert acc["n"] == 15 and acc["ci_low"] < acc["value"] < acc["ci_high"]
        assert stored[("latency", "success_rate")]["value"] == pytest.approx(0.5)
        gen = sq.list_samples(s, run_id, task="smoke_gen")
        assert gen[0]["latency_s"] == 0.5 and gen[0]["scores"]["batch_size"] == 3
        mc = sq.list_samples(s, run_id, task="smoke_mc_science")
        assert len(mc[0]["scores"]["loglikelihoods"]) == 4
        lat = sq.list_samples(s, run_id, task="latency")
        assert [x["error"] for x in lat] == [None, "RuntimeError: boom"]
