"""Helpers of the llama.cpp backend that need no loaded model: GGUF facts, chat rendering, log-softmax, errors.

Kept apart from ``llamacpp_backend`` so they are unit-testable without compiling llama.cpp.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from gemmawatch.collectors.backends.base import GenerationResult
from gemmawatch.collectors.bundled import BUNDLED_MODEL_ID, bundled_gguf_path
from gemmawatch.errors import BackendError, MissingDependencyError

__all__ = [
    "RequestError",
    "failed_result",
    "file_revision",
    "ftype_names",
    "import_llama_cpp",
    "log_softmax_at",
    "quantization_from_filename",
    "quantization_name",
    "render_chat",
    "resolve_gguf",
]

# Quantisation suffixes as they appear in GGUF file names (longest first, so Q4_K_M beats Q4_K).
_FILENAME_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q[1-8]_(?:K_[SMXL]|K|[01]|XXS|XS|NL|S|M)|TQ[12]_0|MXFP4|BF16|F16|F32)(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def ftype_names() -> dict[int, str]:
    """llama.cpp's ``general.file_type`` numbers -> names (``15 -> "Q4_K_M"``), from llama_cpp's constants.

    Read from the installed binding rather than copied, so new quantisation types appear by themselves.
    """
    import llama_cpp

    names: dict[int, str] = {}
    for attr in dir(llama_cpp):
        if attr.startswith("LLAMA_FTYPE_") and attr != "LLAMA_FTYPE_GUESSED":
            value = getattr(llama_cpp, attr)
            if isinstance(value, int):
                names[value] = attr.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    return names


def quantization_from_filename(path: Path) -> str | None:
    """The quantisation named in a GGUF file name (``gemma-3-270m-q4_k_m.gguf -> "Q4_K_M"``), if any."""
    found = _FILENAME_QUANT.findall(path.stem)
    return found[-1].upper() if found else None


def quantization_name(metadata: Mapping[str, str], path: Path, names: Mapping[int, str] | None = None) -> str | None:
    """The file's quantisation: GGUF metadata ``general.file_type`` first, else the file name."""
    raw = metadata.get("general.file_type")
    if raw is not None and str(raw).strip().isdigit():
        table = names if names is not None else ftype_names()
        name = table.get(int(str(raw).strip()))
        if name:
            return name
    return quantization_from_filename(path)


def file_revision(path: Path, *, chunk: int = 1 << 22) -> str:
    """``gguf-sha256:<first 12 hex digits>`` of the file (hashes it: about 1 s per GB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return f"gguf-sha256:{digest.hexdigest()[:12]}"


def _raise_exception(message: str) -> None:
    # Hugging Face chat templates call raise_exception() on bad conversations.
    raise BackendError(f"The chat template rejected the conversation: {message}. Fix: check the message roles")


def render_chat(template: str, messages: Sequence[Mapping[str, str]], *, bos_token: str, eos_token: str) -> str:
    """Render a Hugging Face-style Jinja chat template the way ``apply_chat_template`` does.

    Same sandboxed environment and options as transformers (``trim_blocks``,
    ``lstrip_blocks``), with the generation prompt added, so the text equals the
    transformers backend's rendering of the same template.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    compiled: Any = env.from_string(template)
    return str(
        compiled.render(
            messages=[dict(m) for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=True,
        )
    )


def log_softmax_at(logits: np.ndarray, token: int) -> tuple[float, bool]:
    """``log softmax(logits)[token]`` (in float64) and whether ``token`` is the argmax."""
    values = logits.astype(np.float64, copy=False)
    top = float(values.max())
    log_z = top + float(np.log(np.exp(values - top).sum()))
    return float(values[token]) - log_z, int(values.argmax()) == token


def resolve_gguf(model_id: str) -> Path:
    """The GGUF file behind ``model_id`` (assembling the bundled one on first use)."""
    if model_id == BUNDLED_MODEL_ID:
        return bundled_gguf_path()
    if model_id.startswith("bundled:"):
        raise BackendError(f"Unknown bundled model '{model_id}'. Fix: use {BUNDLED_MODEL_ID}")
    path = Path(model_id).expanduser()
    if not path.is_file():
        raise BackendError(
            f"GGUF file '{model_id}' not found. Fix: pass the path of an existing .gguf file, "
            f"or use llamacpp:{BUNDLED_MODEL_ID}"
        )
    return path


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a MissingDependencyError with the install hint."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError(
            "The llamacpp backend needs llama-cpp-python. Fix: pip install 'gemmawatch[llamacpp]' "
            "(compiles llama.cpp, ~12 min on 2 cores)"
        ) from exc
    return llama_cpp


class RequestError(Exception):
    """A per-request failure with a stable error class (turned into a failed result)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


def failed_result(
    error_class: str, message: str, started_at: datetime, e2e: float, input_tokens: int
) -> GenerationResult:
    """A failed request: empty text, the error and its class."""
    return GenerationResult(
        text="",
        input_tokens=input_tokens,
        output_tokens=0,
        token_source="tokenizer",
        started_at=started_at,
        e2e_s=e2e,
        error=message or error_class,
        error_class=error_class,
    )
