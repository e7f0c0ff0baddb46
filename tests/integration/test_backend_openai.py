"""The OpenAI-compatible backend against a REAL server: llama-cpp-python's server on the bundled Gemma.

One server per module (about 2 s to start). Everything stays tiny: echo+logprobs costs
about 4 s per request on this server (262k-token vocabulary).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import gw
from http_servers import LLAMA_ALIAS, llama_server  # noqa: F401 - llama_server is a fixture

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.collectors.backends.openai_backend import OpenAIBackend
from gemmawatch.evals.runner import run_lm_eval

pytestmark = pytest.mark.model


def backend(url: str, **options: object) -> OpenAIBackend:
    return OpenAIBackend(
        TargetInfo(name="llama-server", backend="openai", model_id=LLAMA_ALIAS, options={"base_url": url, **options})
    )


@pytest.fixture(scope="module")
def tok_backend(llama_server: str) -> Iterator[OpenAIBackend]:  # noqa: F811
    """A backend with the bundled Gemma's tokenizer (loaded once for the module)."""
    b = backend(llama_server, tokenizer="bundled", max_concurrency=2)
    yield b
    b.close()


def assert_timed(result: GenerationResult) -> None:
    """TTFT/ITL/TPOT present and consistent with the vLLM definitions."""
    assert result.ok, result.error
    assert result.ttft_s is not None and 0 < result.ttft_s < result.e2e_s
    assert result.output_tokens >= 2 and result.tpot_s is not None
    assert result.tpot_s == pytest.approx((result.e2e_s - result.ttft_s) / (result.output_tokens - 1))
    assert result.itl_s and all(gap >= 0 for gap in result.itl_s)
    # Chunks arrive between the first token and the last byte.
    assert sum(result.itl_s) <= result.e2e_s - result.ttft_s + 1e-6


def test_completions_stream_is_timed_and_counted(llama_server: str) -> None:  # noqa: F811
    b = backend(llama_server)
    assert LLAMA_ALIAS in b.served_models
    request = GenerationRequest(prompt="The capital of France is", max_new_tokens=8)
    first, second = b.stream(request), b.stream(request)
    assert_timed(first)
    # llama-cpp-python sends no usage in streams; without a tokenizer each content chunk is one token.
    assert first.token_source == "chunks" and first.output_tokens == len(first.itl_s) + 1 <= 8
    assert first.text.strip() and first.text == second.text  # greedy decoding is deterministic
    b.close()


def test_tokenizer_counts_match_the_servers_usage(llama_server: str, tok_backend: OpenAIBackend) -> None:  # noqa: F811
    request = GenerationRequest(prompt="The capital of France is", max_new_tokens=6)
    streamed = tok_backend.stream(request)
    # extra_body turns streaming off: the server then answers with one JSON body carrying usage.
    whole = backend(llama_server, extra_body={"stream": False}).stream(request)
    assert streamed.ok and whole.ok, (streamed.error, whole.error)
    assert (streamed.token_source, whole.token_source) == ("tokenizer", "server")
    assert whole.text == streamed.text
    assert streamed.input_tokens == whole.input_tokens  # <bos> + prompt, counted the same way
    assert abs(streamed.output_tokens - whole.output_tokens) <= 1
    assert whole.ttft_s is None  # nothing was observed token by token


def test_chat_generate_goes_through_the_servers_template(tok_backend: OpenAIBackend) -> None:
    requests = [
        GenerationRequest(prompt="Name a colour.", max_new_tokens=8, chat=True),
        GenerationRequest(prompt=[{"role": "user", "content": "Say hello."}], max_new_tokens=8),
    ]
    results = tok_backend.generate(requests)  # two in flight; the server queues them
    assert len(results) == 2
    for result in results:
        assert_timed(result)
        assert result.token_source == "tokenizer" and result.text.strip()
        # Counted on the rendered Gemma turn: <bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n
        assert result.input_tokens >= 12


def test_loglikelihood_from_echoed_prompt_logprobs(tok_backend: OpenAIBackend) -> None:
    from lm_eval.api.instance import Instance

    pair = ("Paris is in", " France")
    [(logprob, greedy)] = tok_backend.loglikelihood([pair])
    assert -15 < logprob < 0 and isinstance(greedy, bool)
    # lm-eval's own local-completions (token-count split) agrees with gemmawatch's text-offset split.
    lm = tok_backend.lm_eval_model(batch_size=1)
    [(lm_logprob, lm_greedy)] = lm.loglikelihood(
        [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=0)], disable_tqdm=True
    )
    assert lm_logprob == pytest.approx(logprob, abs=1e-4) and lm_greedy == greedy


def test_lm_eval_generation_task_through_the_server(llama_server: str) -> None:  # noqa: F811
    b = backend(llama_server)
    outcome = run_lm_eval(b, ["smoke_gen"], limit=3, batch_size=2)
    metrics = {(m["task"], m["metric"]): m for m in outcome.metrics}
    exact = metrics[("smoke_gen", "exact_match")]
    assert exact["n"] == 3 and 0.0 <= exact["value"] <= 1.0 and exact["producer"] == "lm-eval"
    assert len(outcome.samples) == 3
    assert all(s["output"] is not None and s["latency_s"] and s["latency_s"] > 0 for s in outcome.samples)
    assert outcome.provenance["config"]["target"]["backend"] == "openai"
    b.close()


def test_cli_eval_end_to_end(llama_server: str, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    spec = f"openai:{LLAMA_ALIAS}@{llama_server}"
    proc = gw("eval", "--target", spec, "--tasks", "smoke_gen", "--limit", "3", "--latency-prompts", "1", "--json",
              "--db", db)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads(proc.stdout)["run_id"]
    shown = gw("runs", "show", str(run_id), "--json", "--db", db)
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["status"] == "completed" and summary["target_info"]["backend"] == "openai"
    metrics = {(m["task"], m["metric"]): m for m in summary["metrics"]}
    assert metrics[("smoke_gen", "exact_match")]["n"] == 3
    ttft = metrics[("latency", "ttft_s_p50")]
    assert ttft["n"] == 1 and 0 < ttft["value"] < 5
    assert metrics[("latency", "tpot_s_mean")]["value"] > 0
