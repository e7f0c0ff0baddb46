"""Converting a real lm-eval results dict (captured from the bundled Gemma) into gemmawatch rows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.evals import lm_eval_results as convert
from gemmawatch.evals.stats import wilson_interval
from gemmawatch.evals.timed_lm import BatchTiming

FIXTURE = Path(__file__).parents[1] / "data" / "lm_eval_smoke_limit3.json"
MC_TASKS = [f"smoke_mc_{s}" for s in ("arithmetic", "science", "geography", "vocabulary", "common_sense")]
METRIC_KEYS = {
    "task", "metric", "filter", "value", "stderr", "ci_low", "ci_high", "n", "higher_is_better",
    "producer", "producer_version", "task_version", "details",
}  # fmt: skip
SAMPLE_KEYS = {
    "task", "doc_id", "prompt", "output", "target", "scores", "latency_s", "ttft_s", "tpot_s",
    "input_tokens", "output_tokens", "token_source", "error", "started_at",
}  # fmt: skip


@pytest.fixture(scope="module")
def res() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def _row(rows: list[dict[str, Any]], task: str, metric: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["task"] == task and r["metric"] == metric]
    return row


def test_metric_rows_cover_every_aggregate_with_storage_columns(res: dict[str, Any]) -> None:
    rows = convert.metric_rows(res, limit=3)
    assert all(set(r) == METRIC_KEYS for r in rows)
    keys = {(r["task"], r["metric"], r["filter"]) for r in rows}
    expected = {
        (task, metric.split(",")[0], metric.split(",")[1])
        for task, block in res["results"].items()
        for metric in block
        if "," in metric and "_stderr" not in metric
    }
    assert keys == expected
    assert ("smoke", "exact_match", "none") in keys and ("smoke_mc", "acc", "none") in keys


def test_values_and_stderr_are_lm_evals_own(res: dict[str, Any]) -> None:
    rows = convert.metric_rows(res)
    for r in rows:
        block = res["results"][r["task"]]
        assert r["value"] == block[f"{r['metric']},{r['filter']}"]
        stderr = block[f"{r['metric']}_stderr,{r['filter']}"]
        assert r["stderr"] == (None if stderr == "N/A" else stderr)


def test_leaf_metric_has_n_wilson_ci_and_provenance(res: dict[str, Any]) -> None:
    rows = convert.metric_rows(res, limit=3, producer_version="0.4.13")
    row = _row(rows, "smoke_mc_science", "acc")
    per_sample = [s["acc"] for s in res["samples"]["smoke_mc_science"]]
    assert row["n"] == len(per_sample) == res["n-samples"]["smoke_mc_science"]["effective"] == 3
    assert (row["ci_low"], row["ci_high"]) == wilson_interval(sum(per_sample), 3)
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert row["higher_is_better"] is True
    assert row["producer"] == "lm-eval" and row["producer_version"] == "0.4.13"
    assert row["task_version"] == "1.0"
    details = row["details"]
    assert details["filter"] == "none" and details["n_shot"] == 0 and details["limit"] == 3
    assert details["ci_method"] == "wilson"
    assert len(details["task_hash"]) == 64  # sha256 hex, as lm-eval's tracker writes it


def test_group_rows_pool_subtask_samples(res: dict[str, Any]) -> None:
    rows = convert.metric_rows(res)
    acc = _row(rows, "smoke_mc", "acc")
    pooled = [s["acc"] for t in MC_TASKS for s in res["samples"][t]]
    assert acc["n"] == 15 == sum(_row(rows, t, "acc")["n"] for t in MC_TASKS)
    assert acc["value"] == pytest.approx(sum(pooled) / len(pooled))
    assert (acc["ci_low"], acc["ci_high"]) == wilson_interval(sum(pooled), 15)
    assert acc["details"]["subtasks"] == MC_TASKS
    # The top group: acc pools the MC tasks only; exact_match comes from smoke_gen alone.
    assert _row(rows, "smoke", "acc")["n"] == 15
    em = _row(rows, "smoke", "exact_match")
    assert em["n"] == 3 and em["value"] == res["results"]["smoke_gen"]["exact_match,none"]
    # lm-eval leaves higher_is_better for acc off the 'smoke' group; we take it from a subtask.
    assert "acc" not in res["higher_is_better"]["smoke"]
    assert _row(rows, "smoke", "acc")["higher_is_better"] is True


def test_every_ci_is_inside_unit_interval_and_contains_value(res: dict[str, Any]) -> None:
    for r in convert.metric_rows(res):
        assert 0.0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1.0, r


def test_unweighted_group_gets_stratified_interval(res: dict[str, Any]) -> None:
    """A weight_by_size: false group reports the mean of subtask means; the CI must follow it."""
    res2 = copy.deepcopy(res)
    res2["samples"]["smoke_mc_science"] = res2["samples"]["smoke_mc_science"][:1]  # unequal sizes
    values = {t: [s["acc"] for s in res2["samples"][t]] for t in MC_TASKS}
    macro = sum(sum(v) / len(v) for v in values.values()) / len(values)
    res2["results"]["smoke_mc"]["acc,none"] = macro
    row = _row(convert.metric_rows(res2), "smoke_mc", "acc")
    assert row["details"]["ci_method"].startswith("stratified bootstrap")
    assert row["ci_low"] <= macro <= row["ci_high"]


def test_non_mean_aggregation_gets_no_interval(res: dict[str, Any]) -> None:
    res2 = copy.deepcopy(res)
    res2["results"]["smoke_gen"]["exact_match,none"] = 0.9  # not the mean of the samples
    row = _row(convert.metric_rows(res2), "smoke_gen", "exact_match")
    assert row["ci_low"] is None and row["ci_high"] is None
    assert row["n"] == 3 and row["details"]["ci_method"].startswith("none")


def test_sample_rows_multiple_choice(res: dict[str, Any]) -> None:
    rows = convert.sample_rows(res)
    assert all(set(r) == SAMPLE_KEYS for r in rows)
    assert len(rows) == sum(len(v) for v in res["samples"].values()) == 18
    raw = res["samples"]["smoke_mc_arithmetic"][0]
    row = next(r for r in rows if r["task"] == "smoke_mc_arithmetic" and r["doc_id"] == 0)
    assert row["prompt"] == raw["arguments"][0][0] == "Question: What is 3 + 4?\nAnswer:"
    lls = [r[0] for r in raw["filtered_resps"]]
    choices = raw["doc"]["choices"]
    assert row["scores"]["loglikelihoods"] == lls
    assert row["output"] == choices[lls.index(max(lls))]  # the chosen choice, delimiter stripped
    assert row["target"] == choices[raw["target"]] == "7"
    assert row["scores"]["acc"] == raw["acc"] and row["scores"]["acc_norm"] == raw["acc_norm"]
    assert (row["output"] == row["target"]) == (row["scores"]["acc"] == 1.0)
    assert row["latency_s"] is None and row["ttft_s"] is None and row["error"] is None


def test_sample_rows_generation_with_batch_timings_and_token_counts(res: dict[str, Any]) -> None:
    started = datetime(2025, 1, 1, tzinfo=UTC)
    timings = {("smoke_gen", 1): BatchTiming(latency_s=1.25, batch_size=3, started_at=started)}
    rows = convert.sample_rows(res, timings=timings, count_tokens=lambda text: len(text.split()))
    gen = [r for r in rows if r["task"] == "smoke_gen"]
    assert [r["doc_id"] for r in gen] == [0, 1, 2]
    raw = res["samples"]["smoke_gen"][1]
    row = gen[1]
    assert row["output"] == raw["filtered_resps"][0]
    assert row["target"] == raw["target"]
    assert row["scores"] == {"exact_match": raw["exact_match"], "batch_size": 3}
    assert row["latency_s"] == 1.25 and row["started_at"] == started
    assert row["input_tokens"] == len(row["prompt"].split())
    assert row["output_tokens"] == len(row["output"].split()) and row["token_source"] == "tokenizer"
    assert gen[0]["latency_s"] is None  # no timing recorded for that doc
    mc = next(r for r in rows if r["task"].startswith("smoke_mc"))
    assert mc["output_tokens"] is None  # nothing was generated for multiple choice


def test_sample_rows_merge_extra_filters(res: dict[str, Any]) -> None:
    res2 = copy.deepcopy(res)
    extra = copy.deepcopy(res2["samples"]["smoke_gen"][0])
    extra["filter"] = "strict"
    extra["exact_match"] = 0.0
    res2["samples"]["smoke_gen"].append(extra)
    row = next(r for r in convert.sample_rows(res2) if r["task"] == "smoke_gen" and r["doc_id"] == 0)
    assert row["scores"]["exact_match"] == res["samples"]["smoke_gen"][0]["exact_match"]
    assert row["scores"]["exact_match,strict"] == 0.0


def test_task_hashes_match_lm_eval_tracker_formula(res: dict[str, Any]) -> None:
    import hashlib

    samples = res["samples"]["smoke_gen"]
    joined = "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples)
    assert convert.task_hashes(res)["smoke_gen"] == hashlib.sha256(joined.encode()).hexdigest()


def test_provenance_redacts_secrets_and_keeps_versions(res: dict[str, Any]) -> None:
    res2 = copy.deepcopy(res)
    res2["config"]["model_args"] = "pretrained=x,api_key=sk-123,token=abc,tokenizer=/t,dtype=float32"
    extra = {"auth_header": "Bearer y", "batch_size": 8, "target": {"options": {"HF_TOKEN": "t", "path": "/a/token"}}}
    prov = convert.provenance(res2, extra_config=extra)
    assert prov["config"]["model_args"] == "pretrained=x,tokenizer=/t,dtype=float32"
    assert "auth_header" not in prov["config"] and prov["config"]["batch_size"] == 8
    assert prov["config"]["target"]["options"] == {"path": "/a/token"}
    assert prov["lm_eval_version"] == "0.4.13" and prov["transformers_version"]
    assert prov["versions"]["smoke_gen"] == 1.0 and prov["n-shot"]["smoke_gen"] == 0
    assert set(prov["task_hashes"]) == set(res["samples"])
    assert datetime.fromisoformat(prov["date"]).tzinfo is not None
