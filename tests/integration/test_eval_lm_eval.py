"""run_lm_eval on the real bundled Gemma, and equality with plain lm-eval on the same task.

Set GEMMAWATCH_REGEN_FIXTURES=1 to rewrite tests/data/lm_eval_smoke_limit3.json from
the plain-lm-eval reference run (the unit tests of the result conversion use it).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.evals.runner import EvalOutcome, run_lm_eval
from gemmawatch.evals.suites import suite_dir

pytestmark = pytest.mark.model

LIMIT = 3
BATCH = 8
FIXTURE = Path(__file__).parents[1] / "data" / "lm_eval_smoke_limit3.json"


@pytest.fixture(scope="module")
def outcome(gemma_backend: Any) -> EvalOutcome:
    return run_lm_eval(gemma_backend, ["smoke"], limit=LIMIT, batch_size=BATCH)


@pytest.fixture(scope="module")
def plain_lm_eval() -> dict[str, Any]:
    """``lm_eval --model hf --model_args pretrained=DIR,dtype=float32 --tasks smoke --limit 3`` in Python."""
    from gemmawatch.evals.lm_eval_tasks import set_offline_env

    set_offline_env()  # before lm-eval/datasets are imported: no hub access, ever
    import lm_eval
    from lm_eval.tasks import TaskManager

    from gemmawatch.collectors.bundled import converted_model_dir

    model_dir = converted_model_dir()
    res = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32",
        tasks=["smoke"],
        task_manager=TaskManager(include_path=[str(suite_dir())]),
        limit=LIMIT,
        batch_size=BATCH,
        device="cpu",
        log_samples=True,
    )
    assert res is not None
    if os.environ.get("GEMMAWATCH_REGEN_FIXTURES") == "1":
        _write_fixture(res)
    return dict(res)


def _write_fixture(res: dict[str, Any]) -> None:
    from lm_eval.utils import handle_non_serializable

    keep = {
        "results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
        "n-samples", "samples", "config", "date", "transformers_version", "lm_eval_version",
    }  # fmt: skip
    data = json.loads(json.dumps({k: v for k, v in res.items() if k in keep}, default=handle_non_serializable))
    config_keys = ("task", "output_type", "target_delimiter", "num_fewshot", "metric_list")
    data["configs"] = {t: {k: c[k] for k in config_keys if k in c} for t, c in data["configs"].items()}
    data["config"]["model_args"] = "pretrained=<gemmawatch cache>/models/gemma-3-270m,dtype=float32"
    data["_comment"] = (
        "Real lm_eval.simple_evaluate output: bundled Gemma 3 270M (fp32), model='hf', tasks=['smoke'], "
        "limit=3, batch_size=8, log_samples=True; trimmed (configs reduced, env info dropped). Regenerate: "
        "GEMMAWATCH_REGEN_FIXTURES=1 pytest -m model tests/integration/test_eval_lm_eval.py"
    )
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def test_metrics_have_n_and_intervals_containing_the_value(outcome: EvalOutcome) -> None:
    tasks = {m["task"] for m in outcome.metrics}
    assert {"smoke", "smoke_mc", "smoke_gen", "smoke_mc_science"} <= tasks
    for m in outcome.metrics:
        assert m["n"] >= LIMIT, m
        assert 0.0 <= m["ci_low"] <= m["value"] <= m["ci_high"] <= 1.0, m
        assert m["producer"] == "lm-eval" and m["higher_is_better"] is True
    leaf = next(m for m in outcome.metrics if m["task"] == "smoke_gen" and m["metric"] == "exact_match")
    assert leaf["n"] == LIMIT and leaf["details"]["limit"] == LIMIT


def test_samples_carry_prompts_outputs_and_batch_timings(outcome: EvalOutcome) -> None:
    assert len(outcome.samples) == 6 * LIMIT  # 5 MC subjects + smoke_gen
    for s in outcome.samples:
        assert s["prompt"].startswith("Question: ") and s["prompt"].endswith("Answer:")
        assert s["target"]
        assert s["input_tokens"] and s["input_tokens"] > 3
    gen = [s for s in outcome.samples if s["task"] == "smoke_gen"]
    assert all(s["latency_s"] > 0 and s["scores"]["batch_size"] == LIMIT for s in gen)
    assert all(s["output_tokens"] is not None and s["output_tokens"] <= 16 for s in gen)
    mc = [s for s in outcome.samples if s["task"].startswith("smoke_mc_")]
    assert all(len(s["scores"]["loglikelihoods"]) == 4 and s["output"] for s in mc)
    assert outcome.provenance["config"]["target"]["name"] == "gemma-3-270m"
    import lm_eval

    assert outcome.provenance["lm_eval_version"] == lm_eval.__version__


def test_scores_equal_plain_lm_eval(outcome: EvalOutcome, plain_lm_eval: dict[str, Any]) -> None:
    ours = {(m["task"], m["metric"], m["filter"]): m["value"] for m in outcome.metrics}
    theirs = {
        (task, key.split(",")[0], key.split(",")[1]): value
        for task, block in plain_lm_eval["results"].items()
        for key, value in block.items()
        if "," in key and "_stderr" not in key
    }
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == value, key  # identical, not approximately equal
    # Per sample: the same generations and (to float noise) the same loglikelihoods.
    gen_ours = {s["doc_id"]: s["output"] for s in outcome.samples if s["task"] == "smoke_gen"}
    gen_theirs = {s["doc_id"]: s["filtered_resps"][0] for s in plain_lm_eval["samples"]["smoke_gen"]}
    assert gen_ours == gen_theirs
    ll_ours = [s["scores"]["loglikelihoods"] for s in outcome.samples if s["task"] == "smoke_mc_science"]
    ll_theirs = [[r[0] for r in s["filtered_resps"]] for s in plain_lm_eval["samples"]["smoke_mc_science"]]
    for a, b in zip(ll_ours, ll_theirs, strict=True):
        assert all(math.isclose(x, y, abs_tol=1e-4) for x, y in zip(a, b, strict=True))
