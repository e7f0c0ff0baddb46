"""Variant options of the transformers backend, checked before any weights load (no model needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from gemmawatch.collectors.backends.hf_variants import (
    VariantPlan,
    apply_variants,
    from_pretrained_kwargs,
    model_bytes,
    plan_variants,
    quant_kind,
    quantize_int8_dynamic,
)
from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.collectors.targets import BUILTIN_TARGETS, resolve_target
from gemmawatch.errors import BackendError, MissingDependencyError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BNB_ERROR = (
    "4-bit/8-bit bitsandbytes quantization needs a CUDA GPU. Fix: use quantization=int8 on CPU or a GPU machine"
)


@pytest.mark.parametrize("spec_quant", ["4bit", "8bit", "nf4"])
def test_bitsandbytes_on_cpu_is_a_one_line_error_before_loading(spec_quant: str) -> None:
    info = resolve_target(f"transformers:bundled:gemma-3-270m?quantization={spec_quant}&device=cpu")
    with pytest.raises(BackendError) as caught:
        TransformersBackend(info)
    assert str(caught.value) == BNB_ERROR


def test_quantization_option_wins_over_the_field_and_labels_are_recorded() -> None:
    plan = plan_variants("Q4_K_M (dequantised)", {"quantization": "int8"}, CPU)
    assert plan.quantization == "int8" and plan.label("Q4_K_M (dequantised)") == "int8-dynamic"
    assert VariantPlan(quantization="4bit").label(None) == "bnb-nf4"
    assert VariantPlan(quantization="8bit").label(None) == "bnb-int8"
    # Descriptive labels of weights as saved apply nothing and are kept.
    as_saved = plan_variants("Q4_K_M (dequantised)", {}, CPU)
    assert as_saved.quantization is None and as_saved.label("Q4_K_M (dequantised)") == "Q4_K_M (dequantised)"
    assert [quant_kind(v) for v in ("none", None, "INT8-dynamic", "bnb-nf4")] == [None, None, "int8", "4bit"]
    assert plan_variants(BUILTIN_TARGETS["gemma-3-270m-int8"].quantization, {}, CPU).quantization == "int8"


@pytest.mark.parametrize(
    ("quantization", "options", "device", "needle"),
    [
        ("int4-magic", {}, CPU, "Unknown quantization 'int4-magic' for the transformers backend. Fix: use 4bit"),
        ("int8", {}, CUDA, "quantization=int8 (torch dynamic int8) runs on CPU only. Fix:"),
        (None, {"attn_implementation": "flash"}, CPU, "Unknown attn_implementation 'flash'. Fix: use one of sdpa"),
        (None, {"compile": "maybe"}, CPU, "Option compile='maybe' is not a boolean. Fix: use compile=true"),
    ],
)
def test_bad_variant_options_name_the_fix(
    quantization: str | None, options: dict[str, object], device: torch.device, needle: str
) -> None:
    with pytest.raises(BackendError) as caught:
        plan_variants(quantization, options, device)
    message = str(caught.value)
    assert needle in message and "\n" not in message


def test_missing_adapter_path_and_folder_without_adapter_config(tmp_path: Path) -> None:
    info = resolve_target(f"transformers:bundled:gemma-3-270m?adapter={tmp_path / 'nope'}&device=cpu")
    with pytest.raises(BackendError) as caught:
        TransformersBackend(info)  # fails before reading any weights
    assert str(caught.value).startswith(f"Adapter path '{tmp_path / 'nope'}' does not exist. Fix: pass a folder")
    with pytest.raises(BackendError, match="has no adapter_config.json"):
        plan_variants(None, {"adapter": str(tmp_path)}, CPU)


def test_flags_and_attention_are_parsed() -> None:
    plan = plan_variants(None, {"compile": "true", "attn_implementation": "eager", "merge_adapter": 0}, CPU)
    assert (plan.compile, plan.attn_implementation, plan.merge_adapter) == (True, "eager", False)
    assert from_pretrained_kwargs(plan, CPU) == {"attn_implementation": "eager"}
    assert plan_variants(None, {}, CPU) == VariantPlan()  # everything off by default


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_missing_bitsandbytes_gives_the_install_hint() -> None:
    with pytest.raises(MissingDependencyError, match=r"Fix: pip install 'gemmawatch\[quant\]'"):
        from_pretrained_kwargs(VariantPlan(quantization="4bit"), CUDA)


def test_missing_peft_gives_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "peft", None)  # makes `import peft` raise ImportError
    plan = plan_variants(None, {"adapter": str(tmp_path)}, CPU)
    with pytest.raises(MissingDependencyError, match=r"Fix: pip install 'gemmawatch\[peft\]'"):
        apply_variants(torch.nn.Linear(2, 2), plan)


def test_int8_dynamic_quantizes_linears_but_not_the_head_and_counts_packed_bytes() -> None:
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(64, 32)
            self.head = torch.nn.Linear(32, 8, bias=False)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    model = Tiny().eval()
    x = torch.randn(4, 64)
    reference = model(x)
    quantize_int8_dynamic(model)
    assert type(model.body).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert isinstance(model.head, torch.nn.Linear)  # the (tied) head stays float
    out = model(x)
    assert not torch.equal(out, reference) and torch.allclose(out, reference, atol=0.05)
    # head 8x32 fp32 + body: 32x64 int8 weights, 32 per-channel (scale, zero point) pairs, 32 fp32 biases.
    assert model_bytes(model) == 8 * 32 * 4 + 32 * 64 + 32 * 16 + 32 * 4


def test_int8_needs_float32_weights() -> None:
    with pytest.raises(BackendError, match="quantization=int8 needs float32 weights. Fix: use dtype=float32"):
        apply_variants(torch.nn.Linear(2, 2).to(torch.bfloat16), VariantPlan(quantization="int8"))
