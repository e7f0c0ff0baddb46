"""Variants of the real bundled Gemma on CPU: torch dynamic int8 and a real PEFT LoRA adapter."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gemmawatch.collectors.backends import GenerationRequest
from gemmawatch.collectors.backends.transformers_backend import THREADS_ENV, TransformersBackend
from gemmawatch.collectors.targets import BUILTIN_TARGETS, load_backend, resolve_target

pytestmark = pytest.mark.model

#: Easy prompt: fp32 puts ~86 % on " G", so int8 noise must not change the greedy token.
EASY = "A B C D E F"


def _threads() -> str:
    # Same policy as the gemma_backend fixture: one torch thread on small shared machines.
    return "&threads=1" if (os.cpu_count() or 1) <= 2 and not os.environ.get(THREADS_ENV) else ""


def _last_logits(backend: TransformersBackend, prompt: str) -> torch.Tensor:
    ids = torch.tensor([backend.encode(GenerationRequest(prompt))])
    with torch.inference_mode():
        return backend.model(input_ids=ids).logits[0, -1].float()


def _greedy(backend: TransformersBackend, prompt: str, n: int = 8) -> str:
    result = backend.generate([GenerationRequest(prompt, max_new_tokens=n)])[0]
    assert result.ok, result.error
    return result.text


def test_int8_builtin_differs_from_fp32_but_keeps_the_easy_top1(gemma_backend: TransformersBackend) -> None:
    info = BUILTIN_TARGETS["gemma-3-270m-int8"]
    if _threads():
        info = replace(info, options={"threads": 1})
    int8 = load_backend(info)
    assert isinstance(int8, TransformersBackend)
    try:
        assert (int8.info.quantization, int8.info.dtype) == ("int8-dynamic", "float32")
        quantized = [m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
        assert len(quantized) == 18 * 7  # q, k, v, o, gate, up, down in each of the 18 layers
        fp32_bytes, int8_bytes = gemma_backend.memory_bytes(), int8.memory_bytes()
        assert fp32_bytes is not None and int8_bytes is not None and int8_bytes < 0.8 * fp32_bytes

        ref, got = _last_logits(gemma_backend, EASY), _last_logits(int8, EASY)
        assert (ref - got).abs().max() > 1e-2  # really quantized, not the fp32 weights
        assert int(ref.argmax()) == int(got.argmax())
        assert int8.tokenizer.decode(int(got.argmax())) == " G"

        streamed = int8.stream(GenerationRequest(EASY, max_new_tokens=4))
        assert streamed.ok and streamed.text.startswith(" G") and streamed.output_tokens == 4
        assert streamed.ttft_s is not None and streamed.tpot_s is not None
        (ll, greedy), = int8.loglikelihood([(EASY, " G")])
        assert greedy and -1.0 < ll < 0.0
    finally:
        int8.close()


@pytest.fixture(scope="module")
def zero_lora(gemma_backend: TransformersBackend, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PEFT LoRA adapter (r=2 on q_proj) with PEFT's default init: B is zero, so it is a no-op."""
    peft = pytest.importorskip("peft")
    folder = tmp_path_factory.mktemp("lora") / "zero"
    base = copy.deepcopy(gemma_backend.model)  # get_peft_model edits its model in place
    model = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(folder)
    return folder


def test_zero_lora_adapter_loads_and_matches_the_base_greedy_output(
    gemma_backend: TransformersBackend, zero_lora: Path
) -> None:
    from safetensors.torch import load_file

    # Also exercises attn_implementation: eager attention must give the same greedy text as SDPA.
    spec = f"transformers:bundled:gemma-3-270m?adapter={zero_lora}&attn_implementation=eager{_threads()}"
    backend = load_backend(resolve_target(spec))
    assert isinstance(backend, TransformersBackend)
    try:
        assert type(backend.model).__name__ == "PeftModelForCausalLM"
        assert backend.info.options["adapter"] == str(zero_lora.resolve())
        assert backend.model.config._attn_implementation == "eager"
        # The LoRA weights are the saved ones (A is random at init, so a fresh init would not match).
        saved = load_file(zero_lora / "adapter_model.safetensors")
        loaded = {n: p for n, p in backend.model.named_parameters() if "lora_" in n}
        assert len(saved) == len(loaded) == 2 * 18
        key = next(k for k in saved if "layers.0." in k and "lora_A" in k)
        assert torch.equal(loaded[key.replace(".weight", ".default.weight")], saved[key])
        prompt = "The capital of France is"
        assert _greedy(backend, prompt) == _greedy(gemma_backend, prompt)
    finally:
        backend.close()
