"""Target names, specs and the backend registry (no model is loaded)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from gemmawatch.collectors.backends import BACKENDS, TargetInfo
from gemmawatch.collectors.bundled import BUNDLED_MODEL_ID, bundled_revision
from gemmawatch.collectors.targets import BUILTIN_TARGETS, list_targets, load_backend, parse_spec, resolve_target
from gemmawatch.errors import UnknownNameError, UserError


def test_builtin_targets_follow_the_contract() -> None:
    fp32, bf16 = BUILTIN_TARGETS["gemma-3-270m"], BUILTIN_TARGETS["gemma-3-270m-bf16"]
    assert (fp32.backend, fp32.model_id, fp32.dtype) == ("transformers", BUNDLED_MODEL_ID, "float32")
    assert (bf16.backend, bf16.model_id, bf16.dtype) == ("transformers", BUNDLED_MODEL_ID, "bfloat16")
    assert fp32.quantization == bf16.quantization == "Q4_K_M (dequantised)"
    assert fp32.revision == bundled_revision() and fp32.revision.startswith("gguf-sha256:")
    assert len(fp32.revision) == len("gguf-sha256:") + 12


def test_resolve_builtin_and_bare_bundled_id() -> None:
    assert resolve_target("gemma-3-270m-bf16") is BUILTIN_TARGETS["gemma-3-270m-bf16"]
    assert resolve_target(f"  {BUNDLED_MODEL_ID} ") is BUILTIN_TARGETS["gemma-3-270m"]


def test_config_targets_win_and_are_listed_with_origin() -> None:
    mine = TargetInfo(name="gemma-3-270m", backend="transformers", model_id="/models/x", dtype="float16")
    extra = TargetInfo(name="team:gemma", backend="transformers", model_id="google/gemma-3-1b-it")
    config = {"gemma-3-270m": mine, "team:gemma": extra}
    assert resolve_target("gemma-3-270m", config) is mine
    assert resolve_target("team:gemma", config) is extra  # a name with a colon is not parsed as a spec
    listed = {info.name: origin for info, origin in list_targets(config)}
    assert listed == {
        "gemma-3-270m": "config",
        "gemma-3-270m-bf16": "built-in",
        "gemma-3-270m-int8": "built-in",
        "team:gemma": "config",
    }


def test_spec_with_dtype_revision_and_options() -> None:
    info = resolve_target("transformers:google/gemma-3-1b-it?dtype=bfloat16&revision=abc123&threads=2&device=cpu")
    assert info.name == "transformers:google/gemma-3-1b-it?dtype=bfloat16&revision=abc123&threads=2&device=cpu"
    assert (info.backend, info.model_id, info.dtype, info.revision) == (
        "transformers",
        "google/gemma-3-1b-it",
        "bfloat16",
        "abc123",
    )
    assert info.options == {"threads": 2, "device": "cpu"}


def test_spec_split_on_first_colon_with_base_url() -> None:
    info = parse_spec("transformers:bundled:gemma-3-270m@http://127.0.0.1:8000/v1?flag=true&ratio=0.5")
    assert info.model_id == BUNDLED_MODEL_ID
    assert info.revision == bundled_revision() and info.quantization == "Q4_K_M (dequantised)"
    assert info.options == {"flag": True, "ratio": 0.5, "base_url": "http://127.0.0.1:8000/v1"}


@pytest.mark.parametrize(
    ("spec", "error", "needle"),
    [
        (
            "gemma-9000",
            UnknownNameError,
            "Unknown target 'gemma-9000'. Available: gemma-3-270m, gemma-3-270m-bf16, gemma-3-270m-int8.",
        ),
        ("vllm:gemma3", UnknownNameError, "Unknown backend 'vllm' in target 'vllm:gemma3'. Available: genai, llamacpp"),
        ("transformers:", UserError, "Malformed target spec 'transformers:'"),
        ("transformers:x?novalue", UserError, "Malformed options '?novalue'"),
    ],
)
def test_bad_targets_give_one_line_messages_with_a_fix(spec: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as caught:
        resolve_target(spec)
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message and "Fix:" in message


def test_load_backend_unknown_backend_names_available_ones() -> None:
    info = TargetInfo(name="t", backend="nope", model_id="m")
    with pytest.raises(UnknownNameError) as caught:
        load_backend(info)
    assert str(caught.value) == (
        "Unknown backend 'nope'. Available: genai, llamacpp, ollama, openai, transformers. "
        "Fix: set backend to one of those for target 't'"
    )


def test_registry_lists_every_backend_lazily() -> None:
    assert BACKENDS.names() == ["genai", "llamacpp", "ollama", "openai", "transformers"]
    assert "transformers" in BACKENDS.describe("transformers")
    # Registering imports nothing heavy: the optional SDKs load only when a backend is asked for.
    code = (
        "import sys; import gemmawatch.collectors.targets; "
        "print(sorted(m for m in ('llama_cpp', 'ollama', 'google.genai', 'httpx', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_target_info_is_hashable_picklable_and_copies_options() -> None:
    options = {"device": "cpu"}
    info = TargetInfo(name="t", backend="transformers", model_id="m", options=options)
    options["device"] = "cuda"
    assert info.options == {"device": "cpu"}  # not aliased
    assert {info: 1}[TargetInfo(name="t", backend="transformers", model_id="m", options={"device": "cpu"})] == 1
    assert pickle.loads(pickle.dumps(info)) == info


def test_bundled_spec_quantization_follows_the_backend() -> None:
    # transformers dequantises the GGUF; llama.cpp runs its Q4_K_M weights as they are.
    assert resolve_target("transformers:bundled:gemma-3-270m").quantization == "Q4_K_M (dequantised)"
    assert resolve_target("llamacpp:bundled:gemma-3-270m").quantization == "Q4_K_M"
    assert resolve_target("llamacpp:/models/other.gguf").quantization is None
