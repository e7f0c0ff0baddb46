"""The llama.cpp backend in process on the bundled Gemma 3 270M Q4_K_M GGUF (loaded once per module).

Loglikelihood closeness to transformers fp32 on the same weights: the GGUF's Q4_K_M
tensors dequantise exactly to the fp32 checkpoint, so differences come only from
llama.cpp's arithmetic (8-bit activations in its quantised dot products; even
llama.cpp's own batched and one-token evaluations differ by up to ~0.15 nats per
token). Measured on all 320 smoke_mc (question, choice) pairs: |diff| mean 0.12,
median 0.10, p95 0.31, max 0.69 nats (a 5-token choice); at most 0.40 nats per
continuation token; the argmax choice agrees on 78/80 questions. The tolerance
below is per continuation token.

Threads: ``$GEMMAWATCH_LLAMA_THREADS`` (default 2). On a 2-core machine shared with
other processes, 2 llama.cpp threads slow down by up to 10x (spinning threads get
descheduled); 1 thread stays at ~21 tok/s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.collectors.backends import Backend, GenerationRequest, TargetInfo
from gemmawatch.collectors.backends.llamacpp_support import quantization_from_filename, quantization_name
from gemmawatch.collectors.bundled import BUNDLED_MODEL_ID, bundled_revision
from gemmawatch.errors import BackendError

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'gemmawatch[llamacpp]')")

from gemmawatch.collectors.backends.llamacpp_backend import LlamaCppBackend
from gemmawatch.collectors.targets import load_backend, parse_spec

FRANCE = "The capital of France is"
QA = "Question: What is the capital of France?\nAnswer:"
#: Max |llama.cpp - transformers fp32| loglikelihood per continuation token, in nats (see the module docstring).
LL_TOLERANCE_PER_TOKEN = 0.5
THREADS = int(os.environ.get("GEMMAWATCH_LLAMA_THREADS", "2"))


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppBackend]:
    backend = load_backend(parse_spec(f"llamacpp:{BUNDLED_MODEL_ID}?n_threads={THREADS}"))
    assert isinstance(backend, LlamaCppBackend)
    yield backend
    backend.close()


# -- no model needed ---------------------------------------------------------------------------


def test_missing_gguf_is_a_one_line_error_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(BackendError) as err:
        load_backend(parse_spec(f"llamacpp:{missing}?n_threads=2"))
    message = str(err.value)
    assert "\n" not in message and f"GGUF file '{missing}' not found" in message and "Fix:" in message


def test_not_a_gguf_is_a_one_line_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf at all")
    with pytest.raises(BackendError, match=r"llama.cpp could not load .*Fix:") as err:
        LlamaCppBackend(TargetInfo(name="x", backend="llamacpp", model_id=str(bogus)))
    assert "\n" not in str(err.value)


def test_quantization_from_metadata_then_file_name() -> None:
    names = {15: "Q4_K_M", 1: "F16"}
    assert quantization_name({"general.file_type": "15"}, Path("x.gguf"), names) == "Q4_K_M"
    assert quantization_name({}, Path("/m/gemma-3-1b-it-Q8_0.gguf"), names) == "Q8_0"
    assert quantization_from_filename(Path("gemma-3-270m-q4_k_m.gguf")) == "Q4_K_M"
    assert quantization_from_filename(Path("model.gguf")) is None


# -- the real model -------------------------------------------------------------------------------


@pytest.mark.model
def test_loads_the_bundled_gguf_and_reports_what_it_is(llama: LlamaCppBackend) -> None:
    assert isinstance(llama, Backend)
    info = llama.info
    facts = (info.backend, info.model_id, info.dtype, info.quantization)
    assert facts == ("llamacpp", BUNDLED_MODEL_ID, "gguf", "Q4_K_M")
    assert info.revision == bundled_revision() and info.options["n_threads"] == THREADS
    size = llama.memory_bytes()
    assert size is not None and 150e6 < size < 300e6  # 268M parameters, mostly 4-6 bits each
    assert llama.bos_warning is None


@pytest.mark.model
def test_plain_prompt_gets_exactly_one_bos_even_when_it_brings_its_own(
    llama: LlamaCppBackend, caplog: pytest.LogCaptureFixture
) -> None:
    bos = llama.llm.token_bos()
    ids = llama.encode(GenerationRequest(FRANCE))
    assert ids[0] == bos and ids.count(bos) == 1
    with caplog.at_level(logging.WARNING):
        doubled = llama.encode(GenerationRequest("<bos>" + FRANCE))
    assert doubled == ids
    assert any("BOS GUARD" in r.message for r in caplog.records)


@pytest.mark.model
def test_a_template_that_doubles_bos_is_repaired_loudly(
    llama: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gemmawatch.collectors.bundled import GEMMA_CHAT_TEMPLATE

    request = GenerationRequest("Hi", chat=True)
    clean = llama.encode(request)
    monkeypatch.setattr(llama, "_chat_template", "{{ bos_token }}" + GEMMA_CHAT_TEMPLATE)
    with caplog.at_level(logging.WARNING):
        repaired = llama.encode(request)
    assert repaired == clean and repaired.count(llama.llm.token_bos()) == 1
    assert any("BOS GUARD" in r.message and "chat prompt" in r.message for r in caplog.records)


@pytest.mark.model
def test_chat_template_applied_once_with_one_bos_and_matches_transformers(llama: LlamaCppBackend) -> None:
    from transformers import AutoTokenizer

    from gemmawatch.collectors.bundled import converted_model_dir

    messages = [
        {"role": "user", "content": " Hi "},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a colour"},
    ]
    ids = llama.encode(GenerationRequest(messages))
    bos = llama.llm.token_bos()
    assert ids[0] == bos and ids.count(bos) == 1
    assert llama.llm.detokenize(ids, special=True).decode() == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nName a colour<end_of_turn>\n<start_of_turn>model\n"
    )
    hf = AutoTokenizer.from_pretrained(str(converted_model_dir()), local_files_only=True)
    assert ids == hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert llama.encode(GenerationRequest(FRANCE)) == hf(FRANCE).input_ids  # same tokenizer, same ids


@pytest.mark.model
def test_greedy_generation_is_deterministic_and_counts_tokens(llama: LlamaCppBackend) -> None:
    request = GenerationRequest(QA, max_new_tokens=12)
    first, second = llama.generate([request, request])
    assert first.ok and first.text.strip() and first.text == second.text
    assert first.input_tokens == len(llama.encode(request)) and first.token_source == "tokenizer"
    assert first.ttft_s is None and first.e2e_s > 0
    capped = llama.generate([GenerationRequest(QA, max_new_tokens=5)])[0]
    assert capped.output_tokens == 5 and first.text.startswith(capped.text)


@pytest.mark.model
def test_output_tokens_match_llama_usage_and_add_the_eos_it_omits(
    llama: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = GenerationRequest("Say hi.", chat=True, max_new_tokens=20, stop=["\n"])
    ours = llama.generate([chat])[0]
    raw: Any = llama.llm.create_completion(prompt=llama.encode(chat), max_tokens=20, temperature=0.0, stop=["\n"])
    assert ours.text == raw["choices"][0]["text"] and ours.output_tokens == raw["usage"]["completion_tokens"]
    # The base model hardly ever ends by itself: push EOS to the top so it is the first token sampled.
    engine = llama.llm.create_completion
    bias = {llama.llm.token_eos(): 100.0}
    monkeypatch.setattr(llama.llm, "create_completion", lambda **kw: engine(**kw, logit_bias=bias))
    for result in (llama.generate([GenerationRequest(QA)])[0], llama.stream(GenerationRequest(QA))):
        # An empty answer that cost one sampled token (llama's usage would say 0); no text, so no TTFT.
        assert result.ok and (result.text, result.output_tokens, result.ttft_s, result.tpot_s) == ("", 1, None, None)
        assert result.e2e_s > 0


@pytest.mark.model
def test_stop_strings_cut_the_text(llama: LlamaCppBackend) -> None:
    free = llama.generate([GenerationRequest(QA, max_new_tokens=24)])[0]
    assert "\n" in free.text, free.text  # the base model runs on to the next line
    stopped = llama.generate([GenerationRequest(QA, max_new_tokens=24, stop=["\n"])])[0]
    assert stopped.text == free.text.split("\n")[0] and "\n" not in stopped.text
    assert stopped.output_tokens < free.output_tokens


@pytest.mark.model
def test_stream_times_are_consistent(llama: LlamaCppBackend) -> None:
    request = GenerationRequest(QA, max_new_tokens=16)
    streamed = llama.stream(request)
    assert streamed.ok and streamed.text == llama.generate([request])[0].text
    assert streamed.output_tokens == 16
    assert streamed.ttft_s is not None and 0 < streamed.ttft_s <= streamed.e2e_s
    # One text chunk per token here (no stop strings): output_tokens - 1 gaps.
    assert len(streamed.itl_s) == streamed.output_tokens - 1 and all(gap > 0 for gap in streamed.itl_s)
    assert sum(streamed.itl_s) <= streamed.e2e_s - streamed.ttft_s + 1e-6
    assert streamed.tpot_s == pytest.approx((streamed.e2e_s - streamed.ttft_s) / (streamed.output_tokens - 1))


@pytest.mark.model
def test_failures_are_results_not_exceptions(llama: LlamaCppBackend) -> None:
    too_long = GenerationRequest("word " * 3000, max_new_tokens=4)
    result = llama.stream(too_long)
    assert not result.ok and result.error_class == "context_length" and "n_ctx=2048" in (result.error or "")
    assert llama.generate([too_long])[0].error_class == "context_length"


@pytest.mark.model
def test_loglikelihood_orders_answers_and_matches_transformers(llama: LlamaCppBackend, gemma_backend: Any) -> None:
    pairs = [(FRANCE, " Paris"), (FRANCE, " banana"), (FRANCE, " Berlin"), (QA, " Paris"), ("", "Hello world")]
    ours = llama.loglikelihood(pairs)
    (paris, _), (banana, _), (berlin, _), (qa_paris, qa_greedy), (hello, _) = ours
    assert paris > berlin > banana and qa_greedy and qa_paris > paris and hello < 0
    ref = gemma_backend.loglikelihood(pairs)
    for (context, continuation), (got, _), (want, _) in zip(pairs, ours, ref, strict=True):
        n_tokens = llama._encode_pair(context, continuation)[1]
        assert abs(got - want) <= LL_TOLERANCE_PER_TOKEN * n_tokens, f"{continuation!r}: llama.cpp {got} vs HF {want}"
    assert [g for _, g in ours] == [g for _, g in ref]


@pytest.mark.model
def test_scoring_reuses_the_cache_without_changing_results_or_generation(llama: LlamaCppBackend) -> None:
    request = GenerationRequest(QA, max_new_tokens=8)
    before = llama.generate([request])[0].text
    first = llama.loglikelihood([(FRANCE, " Paris"), (FRANCE, " Rome"), ("Unrelated text", " here")])
    again = llama.loglikelihood([(FRANCE, " Paris")])
    assert again[0][0] == pytest.approx(first[0][0], abs=1e-3)
    assert llama.generate([request])[0].text == before  # the KV cache left by scoring is handled
    assert llama.loglikelihood([(FRANCE, "")]) == [(0.0, True)]


@pytest.mark.model
def test_lm_eval_task_runs_on_llamacpp(llama: LlamaCppBackend) -> None:
    from gemmawatch.evals.runner import run_lm_eval

    outcome = run_lm_eval(llama, ["smoke_mc_geography"], limit=4, batch_size=4)
    rows = {(m["task"], m["metric"]): m for m in outcome.metrics}
    acc = rows[("smoke_mc_geography", "acc")]
    assert 0.0 <= acc["value"] <= 1.0 and acc["n"] == 4 and acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    samples = [s for s in outcome.samples if s["task"] == "smoke_mc_geography"]
    assert len(samples) == 4 and all(s["output"] for s in samples)
    assert outcome.provenance["config"]["target"]["backend"] == "llamacpp"
