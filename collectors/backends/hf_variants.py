"""Variants of a ``transformers`` model: quantization, LoRA adapters, attention kernel, compile.

A variant is a different way to serve the same weights, so it is chosen by target options
and recorded on the TargetInfo that results are stored with:

* ``quantization`` (``TargetInfo.quantization`` or the option of that name):
  ``4bit`` (bitsandbytes NF4, double quantization, bfloat16 compute; CUDA only),
  ``8bit`` (bitsandbytes LLM.int8; CUDA only), ``int8`` (torch dynamic int8 on CPU:
  per-channel weights, activations quantized on the fly). Descriptive labels of weights
  that are already quantized (``Q4_K_M (dequantised)``, ``none``) load the model as saved.
* ``adapter``: a PEFT/LoRA adapter folder (``PeftModel.save_pretrained`` output) applied
  on top of the base model; ``merge_adapter=true`` folds it into the weights.
* ``attn_implementation``: ``sdpa`` or ``eager`` (transformers' default otherwise).
* ``compile``: ``true`` wraps ``forward`` in ``torch.compile`` (off by default; the first
  calls are slow while it compiles); ``compile_mode`` is passed on as ``mode``.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gemmawatch.errors import BackendError, MissingDependencyError, one_line

__all__ = [
    "VariantPlan",
    "apply_variants",
    "from_pretrained_kwargs",
    "model_bytes",
    "moves_itself",
    "plan_variants",
    "quant_kind",
]

#: Accepted spellings -> canonical quantization kind.
_QUANT_KINDS = {
    "4bit": "4bit",
    "nf4": "4bit",
    "bnb-4bit": "4bit",
    "bnb-nf4": "4bit",
    "8bit": "8bit",
    "bnb-8bit": "8bit",
    "bnb-int8": "8bit",
    "int8": "int8",
    "int8-dynamic": "int8",
}
#: What each kind is recorded as in ``TargetInfo.quantization``.
QUANT_LABELS = {"4bit": "bnb-nf4", "8bit": "bnb-int8", "int8": "int8-dynamic"}
#: Labels that describe how the weights already are; nothing is applied for them.
_AS_SAVED = {"", "none", "q4_k_m (dequantised)"}
_ATTN = ("sdpa", "eager")
_BNB_CPU_ERROR = (
    "4-bit/8-bit bitsandbytes quantization needs a CUDA GPU. Fix: use quantization=int8 on CPU or a GPU machine"
)


@dataclass(frozen=True)
class VariantPlan:
    """The variant settings of one target, validated before any weights are read."""

    quantization: str | None = None  # "4bit" | "8bit" | "int8" | None
    adapter: Path | None = None
    merge_adapter: bool = False
    attn_implementation: str | None = None
    compile: bool = False
    compile_mode: str | None = None

    def label(self, fallback: str | None) -> str | None:
        """The quantization to record on the TargetInfo (``fallback``: the label it had)."""
        return QUANT_LABELS[self.quantization] if self.quantization else fallback


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise BackendError(f"Option {name}={value!r} is not a boolean. Fix: use {name}=true or {name}=false")


def quant_kind(value: Any) -> str | None:
    """Canonical kind (``4bit``/``8bit``/``int8``) of a quantization setting; None for 'as saved'."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _AS_SAVED:
        return None
    if text in _QUANT_KINDS:
        return _QUANT_KINDS[text]
    raise BackendError(
        f"Unknown quantization '{value}' for the transformers backend. Fix: use 4bit, 8bit or int8 "
        "(or none; checkpoints saved quantized, e.g. GPTQ/AWQ, load as saved without this setting)"
    )


def plan_variants(quantization: str | None, options: dict[str, Any], device: torch.device) -> VariantPlan:
    """Validate the variant options for ``device``; one-line BackendError on any problem.

    ``options["quantization"]`` wins over the TargetInfo field ``quantization``.
    """
    kind = quant_kind(options.get("quantization", quantization))
    if kind in ("4bit", "8bit") and device.type != "cuda":
        raise BackendError(_BNB_CPU_ERROR)
    if kind == "int8" and device.type != "cpu":
        raise BackendError(
            "quantization=int8 (torch dynamic int8) runs on CPU only. Fix: use device=cpu, or 4bit/8bit on CUDA"
        )
    adapter = None
    if options.get("adapter"):
        adapter = Path(str(options["adapter"])).expanduser().resolve()
        if not (adapter / "adapter_config.json").is_file():
            what = "does not exist" if not adapter.exists() else "has no adapter_config.json"
            raise BackendError(
                f"Adapter path '{options['adapter']}' {what}. Fix: pass a folder written by "
                "PeftModel.save_pretrained (adapter_config.json + adapter weights)"
            )
    attn = options.get("attn_implementation")
    if attn is not None and attn not in _ATTN:
        raise BackendError(f"Unknown attn_implementation '{attn}'. Fix: use one of {', '.join(_ATTN)}")
    compile_mode = options.get("compile_mode")
    return VariantPlan(
        quantization=kind,
        adapter=adapter,
        merge_adapter=_bool(options.get("merge_adapter", False), "merge_adapter"),
        attn_implementation=attn,
        compile=_bool(options.get("compile", False), "compile"),
        compile_mode=str(compile_mode) if compile_mode else None,
    )


def from_pretrained_kwargs(plan: VariantPlan, device: torch.device) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments: attention kernel and the bitsandbytes config.

    With bitsandbytes the weights are quantized while loading onto ``device``
    (``device_map``); such a model must not be moved with ``.to()`` afterwards.
    """
    kwargs: dict[str, Any] = {}
    if plan.attn_implementation:
        kwargs["attn_implementation"] = plan.attn_implementation
    if plan.quantization in ("4bit", "8bit"):
        try:
            # transformers imports it itself; importing here first turns its absence into our hint.
            importlib.import_module("bitsandbytes")
        except ImportError as exc:
            raise MissingDependencyError(
                "quantization=4bit/8bit needs the Python package 'bitsandbytes', which is not installed. "
                "Fix: pip install 'gemmawatch[quant]'"
            ) from exc
        from transformers import BitsAndBytesConfig

        if plan.quantization == "4bit":
            config = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        else:
            config = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["quantization_config"] = config
        kwargs["device_map"] = {"": device.index if device.index is not None else 0}
    return kwargs


def moves_itself(plan: VariantPlan) -> bool:
    """True when loading already placed the model (bitsandbytes): skip ``model.to(device)``."""
    return plan.quantization in ("4bit", "8bit")


def _load_adapter(model: Any, plan: VariantPlan) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise MissingDependencyError(
            "The adapter option needs the Python package 'peft', which is not installed. "
            "Fix: pip install 'gemmawatch[peft]'"
        ) from exc
    try:
        wrapped = PeftModel.from_pretrained(model, str(plan.adapter), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BackendError(
            f"Could not load adapter '{plan.adapter}': {one_line(str(exc))}. "
            "Fix: use an adapter trained for this base model"
        ) from exc
    # Merging before int8 keeps LoRA layers out of the quantizer (it only knows nn.Linear).
    if plan.merge_adapter or plan.quantization == "int8":
        return wrapped.merge_and_unload()
    return wrapped


def quantize_int8_dynamic(model: Any) -> Any:
    """Torch dynamic int8 on every ``nn.Linear`` except the output head, in place.

    Per-channel weight scales: with one scale per tensor, Gemma's outlier channels flip
    greedy answers that per-channel keeps. The head stays float because it is tied to the
    input embeddings: quantizing it would add an int8 copy instead of saving memory.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    }
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated in favour of torchao; it still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def apply_variants(model: Any, plan: VariantPlan) -> Any:
    """Adapter, then int8, then compile, on a loaded (and placed) model; returns the model to use."""
    if plan.adapter is not None:
        model = _load_adapter(model, plan)
    if plan.quantization == "int8":
        if next(model.parameters()).dtype != torch.float32:
            raise BackendError("quantization=int8 needs float32 weights. Fix: use dtype=float32 with int8")
        model = quantize_int8_dynamic(model)
    if plan.compile:
        # Compiling forward (not the module) keeps generate(), config and HFLM working unchanged.
        model.forward = torch.compile(model.forward, mode=plan.compile_mode)
    return model


def model_bytes(model: Any) -> int:
    """Bytes of parameters and buffers, plus the packed weights torch's quantized modules hide."""
    total = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        if packed is None or not callable(getattr(module, "weight", None)):
            continue
        weight = module.weight()
        total += weight.numel() * weight.element_size()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            total += weight.q_per_channel_scales().numel() * 8 * 2  # float64 scales + int64 zero points
        bias = module.bias() if callable(getattr(module, "bias", None)) else None
        if bias is not None:
            total += bias.numel() * bias.element_size()
    return int(total)
