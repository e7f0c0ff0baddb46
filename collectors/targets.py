"""Model targets: built-in names, config-defined names and one-line specs.

A target is written in one of three ways:

* a built-in name: ``gemma-3-270m`` (float32), ``gemma-3-270m-bf16`` (bfloat16) or
  ``gemma-3-270m-int8`` (torch dynamic int8 on CPU);
* a name defined in the config file (passed in as ``config_targets``);
* a spec ``BACKEND:MODEL[@BASE_URL][?key=value&...]``, split on the first colon, e.g.
  ``transformers:google/gemma-3-1b-it?dtype=bfloat16`` or
  ``transformers:/models/my-gemma?device=cpu&threads=2``. The keys ``dtype``,
  ``revision`` and ``quantization`` fill the TargetInfo fields; ``BASE_URL`` becomes
  ``options["base_url"]``; every other key is a backend option.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from gemmawatch.collectors.backends import BACKENDS, Backend, TargetInfo
from gemmawatch.collectors.bundled import BUNDLED_MODEL_ID, bundled_revision
from gemmawatch.errors import UnknownNameError, UserError

_BUNDLED_QUANT = "Q4_K_M (dequantised)"

#: Targets that need nothing but the installed packages (the bundled Gemma 3 270M).
BUILTIN_TARGETS: Mapping[str, TargetInfo] = MappingProxyType(
    {
        name: TargetInfo(
            name=name,
            backend="transformers",
            model_id=BUNDLED_MODEL_ID,
            revision=bundled_revision(),
            dtype=dtype,
            quantization=_BUNDLED_QUANT,
        )
        for name, dtype in (("gemma-3-270m", "float32"), ("gemma-3-270m-bf16", "bfloat16"))
    }
    | {
        # The same weights with torch dynamic int8 Linear layers (CPU; see backends.hf_variants).
        "gemma-3-270m-int8": TargetInfo(
            name="gemma-3-270m-int8",
            backend="transformers",
            model_id=BUNDLED_MODEL_ID,
            revision=bundled_revision(),
            dtype="float32",
            quantization="int8-dynamic",
        )
    }
)

_FIELD_KEYS = ("dtype", "revision", "quantization")
_SPEC_HINT = "transformers:google/gemma-3-1b-it?dtype=bfloat16"


def _coerce(value: str) -> Any:
    """Spec values are strings; turn obvious numbers and booleans into JSON-friendly types."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _bundled_quantization(backend: str) -> str:
    # transformers dequantises the bundled GGUF; llama.cpp runs the Q4_K_M weights as they are.
    return _BUNDLED_QUANT if backend == "transformers" else "Q4_K_M"


def parse_spec(spec: str) -> TargetInfo:
    """Parse ``BACKEND:MODEL[@BASE_URL][?key=value&...]``; the spec itself becomes the name."""
    backend, _, rest = spec.partition(":")
    backend = backend.strip()
    rest, _, query = rest.partition("?")
    model_id, _, base_url = rest.partition("@")
    model_id = model_id.strip()
    if not backend or not model_id:
        raise UserError(f"Malformed target spec '{spec}'. Fix: write BACKEND:MODEL, e.g. {_SPEC_HINT}")
    if backend not in BACKENDS:
        available = ", ".join(BACKENDS.names())
        raise UnknownNameError(
            f"Unknown backend '{backend}' in target '{spec}'. Available: {available}. Fix: use e.g. {_SPEC_HINT}"
        )
    fields: dict[str, str] = {}
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise UserError(f"Malformed options '?{query}' in target '{spec}'. Fix: write ?key=value&key2=value2") from exc
    for key, value in pairs:
        if key in _FIELD_KEYS:
            fields[key] = value
        else:
            options[key] = _coerce(value)
    if base_url:
        options["base_url"] = base_url
    default_quant = _bundled_quantization(backend) if model_id == BUNDLED_MODEL_ID else None
    revision = fields.get("revision")
    if revision is None and model_id == BUNDLED_MODEL_ID:
        revision = bundled_revision()
    return TargetInfo(
        name=spec,
        backend=backend,
        model_id=model_id,
        revision=revision,
        dtype=fields.get("dtype"),
        quantization=fields.get("quantization", default_quant),
        options=options,
    )


def _all_targets(config_targets: Mapping[str, TargetInfo] | None) -> dict[str, TargetInfo]:
    # Config entries may shadow a built-in of the same name on purpose.
    return {**BUILTIN_TARGETS, **(config_targets or {})}


def resolve_target(name_or_spec: str, config_targets: Mapping[str, TargetInfo] | None = None) -> TargetInfo:
    """Turn a target name or spec into a TargetInfo.

    Names are looked up first (config before built-ins), so a config target may contain
    a colon in its name. Anything else with a colon is parsed as a spec.
    """
    name = name_or_spec.strip()
    known = _all_targets(config_targets)
    if name in known:
        return known[name]
    if name == BUNDLED_MODEL_ID:  # the bare model id means the default built-in
        return BUILTIN_TARGETS["gemma-3-270m"]
    if ":" in name:
        return parse_spec(name)
    raise UnknownNameError(
        f"Unknown target '{name}'. Available: {', '.join(sorted(known))}. "
        f"Fix: use one of those, define it under 'targets' in the config file, or pass a spec like {_SPEC_HINT}"
    )


def list_targets(config_targets: Mapping[str, TargetInfo] | None = None) -> list[tuple[TargetInfo, str]]:
    """Every named target with its origin (``"built-in"`` or ``"config"``), sorted by name."""
    config = config_targets or {}
    merged = _all_targets(config)
    return [(merged[n], "config" if n in config else "built-in") for n in sorted(merged)]


def load_backend(info: TargetInfo) -> Backend:
    """Load the model behind ``info`` with its backend (this is the slow step)."""
    try:
        factory = BACKENDS.get(info.backend)
    except UnknownNameError as exc:
        raise UnknownNameError(f"{exc}. Fix: set backend to one of those for target '{info.name}'") from exc
    return factory(info)
