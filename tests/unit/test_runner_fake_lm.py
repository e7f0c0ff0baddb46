"""run_lm_eval end to end on the smoke suite with a scripted lm-eval LM (no model).

The scripted LM prefers the shortest choice and always answers " cold", so the
expected per-sample scores can be computed from the suite's own data.
"""

from __future__ import annotations

from typing import Any

import pytest
from lm_eval.api.model import LM
from lm_eval.models.utils import Collator

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.errors import BackendError, RunFailedError, UnknownNameError
from gemmawatch.evals.runner import run_lm_eval
from gemmawatch.evals.suites import load_items
from gemmawatch.evals.timed_lm import TimedLM, plan_batches


class ScriptedLM(LM):
    """Loglikelihood = -len(continuation); generation = ' cold'; records call sizes."""

    def __init__(self, batch_size: int = 4, fail: str | None = None) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.fail = fail
        self.generate_calls: list[int] = []

    def tok_encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        if self.fail == "loglikelihood":
            raise RuntimeError("device lost")
        if self.fail == "short":  # a broken LM: fewer answers than requests
            return []
        return [(-float(len(r.args[1])), False) for r in requests]

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        return [0.0 for _ in requests]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.generate_calls.append(len(requests))
        return [" cold" for _ in requests]


class FakeBackend:
    info = TargetInfo(name="fake", backend="scripted", model_id="none", options={"api_key": "sk-secret", "threads": 1})

    def __init__(self, lm: LM) -> None:
        self.lm = lm

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        return self.lm


def test_run_lm_eval_on_smoke_with_scripted_lm() -> None:
    lm = ScriptedLM(batch_size=2)
    messages: list[str] = []
    out = run_lm_eval(FakeBackend(lm), ["smoke"], limit=3, batch_size=2, progress=messages.append)  # type: ignore[arg-type]

    assert "Running smoke_gen (3 docs)..." in messages
    assert "Running smoke_mc_science (3 docs)..." in messages
    assert any(m.startswith("Scoring 60 loglikelihood requests") for m in messages)  # 15 docs x 4 choices
    assert lm.generate_calls == [2, 1]  # 3 prompts in batches of 2, timed one batch at a time

    metrics = {(m["task"], m["metric"]): m for m in out.metrics}
    mc = [i for i in load_items("mc") if i["subject"] == "arithmetic"][:3]
    expected = [float(min(range(4), key=lambda k: len(i["choices"][k])) == i["answer"]) for i in mc]
    # lm-eval picks the first maximum, as min() does here.
    assert metrics[("smoke_mc_arithmetic", "acc")]["value"] == pytest.approx(sum(expected) / 3)
    gen = load_items("gen")[:3]
    em = sum(i["answer"].lower() == "cold" for i in gen) / 3
    assert metrics[("smoke_gen", "exact_match")]["value"] == pytest.approx(em)
    for m in out.metrics:
        assert m["producer"] == "lm-eval" and m["n"] > 0
        assert m["ci_low"] <= m["value"] <= m["ci_high"]
    assert metrics[("smoke", "acc")]["n"] == 15

    gen_samples = [s for s in out.samples if s["task"] == "smoke_gen"]
    assert len(out.samples) == 18 and len(gen_samples) == 3
    assert all(s["output"] == " cold" and s["latency_s"] is not None for s in gen_samples)
    assert sorted(s["scores"]["batch_size"] for s in gen_samples) == [1, 2, 2]
    assert all(s["input_tokens"] == len(s["prompt"]) for s in gen_samples)  # counted with the LM's tokenizer

    prov = out.provenance
    assert prov["lm_eval_version"] and prov["n-shot"]["smoke_gen"] == 0
    assert prov["config"]["limit"] == 3 and prov["config"]["target"]["name"] == "fake"
    assert prov["config"]["target"]["options"] == {"threads": 1}  # api_key redacted
    assert set(prov["task_hashes"]) >= {"smoke_gen", "smoke_mc_science"}


def test_unknown_task_fails_before_the_model_is_wrapped() -> None:
    class Exploding:
        def lm_eval_model(self, *, batch_size: int = 8) -> LM:
            raise AssertionError("must not be called")

    with pytest.raises(UnknownNameError, match="smoke_gen"):
        run_lm_eval(Exploding(), ["smoke_gne"])  # type: ignore[arg-type]


def test_model_failure_is_a_one_line_backend_error() -> None:
    with pytest.raises(BackendError) as info:
        run_lm_eval(FakeBackend(ScriptedLM(fail="loglikelihood")), ["smoke_mc_science"], limit=2)  # type: ignore[arg-type]
    assert "device lost" in str(info.value) and "\n" not in str(info.value)


def test_harness_failure_is_a_one_line_run_failed_error() -> None:
    """lm-eval itself fails (it checks that answers match requests): RunFailedError, one line."""
    with pytest.raises(RunFailedError) as info:
        run_lm_eval(FakeBackend(ScriptedLM(fail="short")), ["smoke_mc_science"], limit=2)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("lm-eval failed on smoke_mc_science: ValueError") and "\n" not in message


def test_plan_batches_matches_hflm_collator() -> None:
    """Our batches are exactly the chunks HFLM.generate_until forms (same sort, grouping, size)."""

    class Req:
        def __init__(self, ctx: str, kw: dict[str, Any]) -> None:
            self.args = (ctx, kw)

    greedy = {"until": ["\n"], "max_gen_toks": 8}
    other = {"until": ["."], "max_gen_toks": 4}
    reqs = [Req("x" * n, greedy if n % 3 else other) for n in (5, 9, 2, 7, 7, 12, 1, 30, 4, 6)]
    ours = [[reqs[i].args for i in batch] for batch in plan_batches(reqs, 3, len)]

    collator = Collator(
        [r.args for r in reqs], sort_fn=lambda a: (-len(a[0]), a[0]), group_by="gen_kwargs", group_fn=lambda a: a[1]
    )
    theirs = [list(chunk) for chunk in collator.get_batched(n=3)]
    assert sorted(map(str, ours)) == sorted(map(str, theirs))


def test_timed_lm_delegates_attributes() -> None:
    inner = ScriptedLM(batch_size=5)
    timed = TimedLM(inner, batch_size=5)
    assert timed.batch_size == 5 and timed.tok_encode("ab") == [97, 98]
    assert timed.rank == 0 and timed.world_size == 1
