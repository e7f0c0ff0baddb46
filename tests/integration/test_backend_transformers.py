"""The transformers backend on the real bundled Gemma 3 270M (fp32, loaded once per session)."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gemmawatch.collectors.backends import Backend, GenerationRequest, TargetInfo
from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.collectors.bundled import MARKER_NAME, converted_model_dir, gguf_sha256
from gemmawatch.errors import BackendError

pytestmark = pytest.mark.model

FRANCE = "The capital of France is"


def test_conversion_cache_is_reused(gemma_backend: TransformersBackend) -> None:
    start = time.perf_counter()
    folder = converted_model_dir()
    assert time.perf_counter() - start < 2.0  # marker check only, no conversion
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert gguf_sha256() in (folder / MARKER_NAME).read_text()
    assert gemma_backend.info.revision == f"gguf-sha256:{gguf_sha256()[:12]}"


def test_is_a_backend_with_weights_in_memory(gemma_backend: TransformersBackend) -> None:
    assert isinstance(gemma_backend, Backend)
    size = gemma_backend.memory_bytes()
    assert size is not None and 0.9e9 < size < 1.3e9  # ~268M fp32 parameters
    # Weights are memory-mapped from safetensors, so RSS may stay below their size.
    assert gemma_backend.process_rss_bytes() > 100e6


def test_tokenizer_adds_bos_exactly_once(gemma_backend: TransformersBackend) -> None:
    tok = gemma_backend.tokenizer
    ids = tok("x").input_ids
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert gemma_backend.bos_warning is None and "bos_warning" not in gemma_backend.info.options
    assert gemma_backend.encode(GenerationRequest(FRANCE)).count(tok.bos_token_id) == 1


def test_chat_template_renders_gemma_turns_with_one_bos(gemma_backend: TransformersBackend) -> None:
    tok = gemma_backend.tokenizer
    messages = [
        {"role": "user", "content": " Hi "},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a colour"},
    ]
    ids = gemma_backend.encode(GenerationRequest(messages))
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok.decode(ids) == (
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nName a colour<end_of_turn>\n<start_of_turn>model\n"
    )
    plain_as_chat = gemma_backend.encode(GenerationRequest("Hi", chat=True))
    assert tok.decode(plain_as_chat) == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"


def _gguf_tensors(path: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    """Dequantised tensors read straight from the GGUF file.

    gguf's GGUFReader parses all 262k vocabulary entries into Python objects (~25 s on
    a busy 2-core machine); this walks the header with struct and skips them (<1 s).
    """
    import gguf
    from gguf.quants import dequantize

    buf = memoryview(path.read_bytes())
    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string() -> str:
        nonlocal pos
        size = take("Q")
        pos += size
        return bytes(buf[pos - size : pos]).decode()

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(kind: int) -> Any:
        nonlocal pos
        if kind == 8:
            return string()
        if kind == 9:
            inner, count = take("I"), take("Q")
            if inner in scalar:  # fixed-size elements: skip in one step
                pos += count * struct.calcsize(scalar[inner])
                return None
            return [value(inner) for _ in range(count)]
        return take(scalar[kind])

    assert take("I") == 0x46554747  # b"GGUF"
    _version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    alignment = 32
    for _ in range(n_kv):
        key, kind = string(), take("I")
        got = value(kind)
        if key == "general.alignment":
            alignment = int(got)
    infos = []
    for _ in range(n_tensors):
        name, n_dims = string(), take("I")
        dims = [take("Q") for _ in range(n_dims)]
        infos.append((name, dims, take("I"), take("Q")))
    data_start = -(-pos // alignment) * alignment
    out = {}
    for name, dims, kind, offset in infos:
        if name not in wanted:
            continue
        qtype = gguf.GGMLQuantizationType(kind)
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        row_bytes = dims[0] // block * type_size
        rows = int(np.prod(dims[1:]))
        start = data_start + offset
        raw = np.frombuffer(buf[start : start + rows * row_bytes], dtype=np.uint8).reshape(rows, row_bytes)
        out[name] = dequantize(raw, qtype).reshape(list(reversed(dims)))
    return out


def test_converted_weights_equal_the_gguf_dequantisation(gemma_backend: TransformersBackend) -> None:
    from gemmawatch.collectors.bundled import bundled_gguf_path

    pairs = {
        "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",  # Q4_K
        "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",  # Q6_K
        "blk.5.attn_q.weight": "model.layers.5.self_attn.q_proj.weight",  # Q5_0
    }
    expected = _gguf_tensors(bundled_gguf_path(), set(pairs))
    params = dict(gemma_backend.model.named_parameters())
    assert set(expected) == set(pairs)
    for gguf_name, hf_name in pairs.items():
        assert (params[hf_name].detach().cpu().numpy() == expected[gguf_name]).all(), gguf_name


def test_greedy_generate_is_deterministic_and_counts_tokens(gemma_backend: TransformersBackend) -> None:
    request = GenerationRequest(FRANCE, max_new_tokens=6)
    first, other = gemma_backend.generate([request, GenerationRequest("One, two, three,", max_new_tokens=3)])
    again = gemma_backend.generate([request])[0]
    assert first.ok and first.text.strip() and first.text == again.text
    assert first.input_tokens == len(gemma_backend.tokenizer(FRANCE).input_ids) == 6
    assert first.output_tokens == 6 and other.output_tokens == 3
    assert first.token_source == "tokenizer" and first.e2e_s == other.e2e_s > 0  # one batch, one wall time
    assert first.ttft_s is None and first.itl_s == [] and first.tpot_s is None


def test_sampling_requests_are_batched_apart_and_answered_in_order(gemma_backend: TransformersBackend) -> None:
    requests = [
        GenerationRequest("Once upon a time", max_new_tokens=4, temperature=1.0),
        GenerationRequest(FRANCE, max_new_tokens=4),
        GenerationRequest("Once upon a time", max_new_tokens=3, temperature=1.0),
    ]
    sampled, greedy, sampled_short = gemma_backend.generate(requests)
    assert all(r.ok for r in (sampled, greedy, sampled_short))
    assert (sampled.output_tokens, greedy.output_tokens, sampled_short.output_tokens) == (4, 4, 3)
    assert sampled.e2e_s == sampled_short.e2e_s != greedy.e2e_s  # greedy and sampled ran as separate batches
    assert greedy.text == gemma_backend.generate([requests[1]])[0].text


def test_stop_strings_end_generation_and_are_trimmed(gemma_backend: TransformersBackend) -> None:
    free = gemma_backend.generate([GenerationRequest("One, two, three,", max_new_tokens=8)])[0]
    assert "," in free.text  # the model continues the list, so the stop below is real
    stopped = gemma_backend.generate([GenerationRequest("One, two, three,", max_new_tokens=8, stop=[","])])[0]
    assert stopped.text == free.text.split(",")[0] and "," not in stopped.text
    assert stopped.output_tokens < free.output_tokens


def test_stream_measures_ttft_itl_and_tpot(gemma_backend: TransformersBackend) -> None:
    result = gemma_backend.stream(GenerationRequest(FRANCE, max_new_tokens=6))
    batched = gemma_backend.generate([GenerationRequest(FRANCE, max_new_tokens=6)])[0]
    assert result.ok and result.text == batched.text
    assert result.output_tokens == 6 and len(result.itl_s) == 5 and all(g > 0 for g in result.itl_s)
    assert result.ttft_s is not None and 0 < result.ttft_s < result.e2e_s
    assert result.tpot_s == pytest.approx((result.e2e_s - result.ttft_s) / 5)
    assert result.e2e_s == pytest.approx(result.ttft_s + sum(result.itl_s))


def test_failures_are_recorded_per_batch(gemma_backend: TransformersBackend) -> None:
    bad, good = gemma_backend.generate(
        [GenerationRequest(FRANCE, max_new_tokens=-1), GenerationRequest(FRANCE, max_new_tokens=1)], batch_size=1
    )
    assert not bad.ok and bad.error_class and bad.error and "\n" not in bad.error and bad.text == ""
    assert good.ok and good.output_tokens == 1
    streamed = gemma_backend.stream(GenerationRequest(FRANCE, max_new_tokens=-1))
    assert streamed.error_class == bad.error_class


def test_loglikelihood_prefers_the_right_answer(gemma_backend: TransformersBackend) -> None:
    pairs = [(FRANCE, " Paris"), (FRANCE, " banana"), (f"{FRANCE} ", "Paris"), ("", "Hello")]
    scores = gemma_backend.loglikelihood(pairs)
    (paris, _), (banana, banana_greedy), (paris_moved_space, _), (empty_ctx, _) = scores
    assert paris > banana + 5 and not banana_greedy
    assert paris_moved_space == pytest.approx(paris, abs=1e-4)  # trailing context space moves to the continuation
    assert empty_ctx < 0
    greedy_word = gemma_backend.generate([GenerationRequest(FRANCE, max_new_tokens=1)])[0].text
    assert gemma_backend.loglikelihood([(FRANCE, greedy_word)])[0][1] is True


def test_lm_eval_model_wraps_the_loaded_model(gemma_backend: TransformersBackend) -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM

    lm = gemma_backend.lm_eval_model(batch_size=2)
    assert isinstance(lm, LM) and lm.model is gemma_backend.model
    ((theirs, _),) = lm.loglikelihood([Instance("loglikelihood", {}, (FRANCE, " Paris"), 0)])
    assert theirs == pytest.approx(gemma_backend.loglikelihood([(FRANCE, " Paris")])[0][0], abs=1e-3)


def test_missing_hub_model_is_a_one_line_offline_error() -> None:
    info = TargetInfo(name="x", backend="transformers", model_id="google/gemma-does-not-exist-42")
    with pytest.raises(BackendError) as caught:
        TransformersBackend(info)
    assert str(caught.value) == (
        "Model 'google/gemma-does-not-exist-42' is not available offline. Fix: download it once with "
        "`huggingface-cli download google/gemma-does-not-exist-42` or pass a local path"
    )


def test_gguf_is_assembled_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemmawatch.collectors.bundled import CACHE_ENV, bundled_gguf_path

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = bundled_gguf_path()
    assert path.parent == tmp_path / "gguf" and path.stat().st_size == 253_113_024
    assert path.with_name(path.name + ".sha256").read_text().strip() == gguf_sha256()
    start = time.perf_counter()
    assert bundled_gguf_path() == path and time.perf_counter() - start < 0.5  # no re-hash
    with path.open("r+b") as handle:  # a truncated file is detected and rebuilt
        handle.truncate(1000)
    assert bundled_gguf_path().stat().st_size == 253_113_024
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_bos_guard_warns_and_repairs_a_tokenizer_without_bos(
    gemma_backend: TransformersBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from transformers import AutoTokenizer

    source = converted_model_dir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(source / name)
    AutoTokenizer.from_pretrained(str(source), add_bos_token=False).save_pretrained(str(tmp_path))
    info = TargetInfo(name="no-bos", backend="transformers", model_id=str(tmp_path), options={"device": "cpu"})
    with caplog.at_level("WARNING"):
        broken = TransformersBackend(info)
    try:
        assert broken.bos_warning == "the tokenizer does not add <bos>"
        assert broken.info.options["bos_warning"] == broken.bos_warning
        assert any("BOS GUARD" in r.getMessage() and "no-bos" in r.getMessage() for r in caplog.records)
        bos = broken.tokenizer.bos_token_id
        assert broken.tokenizer("x").input_ids[0] != bos  # really broken ...
        assert broken.encode(GenerationRequest(FRANCE)) == gemma_backend.encode(
            GenerationRequest(FRANCE)
        )  # ... repaired
        assert broken.encode(GenerationRequest("Hi", chat=True)).count(bos) == 1
        ours, fixed = gemma_backend.loglikelihood([(FRANCE, " Paris")]), broken.loglikelihood([(FRANCE, " Paris")])
        assert fixed[0][0] == pytest.approx(ours[0][0], abs=1e-4)
    finally:
        broken.close()
