"""Backend data types and generation helpers that need no model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gemmawatch.collectors.backends import GenerationRequest, GenerationResult, tpot
from gemmawatch.collectors.backends.hf_generation import trim_at_stop
from gemmawatch.collectors.bundled import CACHE_ENV, MARKER_NAME, cache_root, gguf_sha256, is_valid_model_dir


def test_tpot_follows_the_vllm_definition() -> None:
    assert tpot(2.0, 0.5, 4) == pytest.approx(0.5)  # (2.0 - 0.5) / (4 - 1)
    assert tpot(2.0, 0.5, 1) is None  # one token: nothing after the first
    assert tpot(2.0, None, 4) is None


def test_trim_at_stop_cuts_at_the_earliest_stop() -> None:
    assert trim_at_stop("a. b\nc", ["\n", "."]) == ("a", True)
    assert trim_at_stop("abc", ["x", ""]) == ("abc", False)  # empty stops are ignored
    assert trim_at_stop("", ["\n"]) == ("", False)


def test_requests_know_when_they_are_chat() -> None:
    plain = GenerationRequest("hi")
    as_chat = GenerationRequest("hi", chat=True)
    messages = GenerationRequest([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert not plain.is_chat and as_chat.is_chat and messages.is_chat
    assert as_chat.messages() == [{"role": "user", "content": "hi"}]
    assert messages.messages()[0]["role"] == "system"


def test_result_ok_reflects_error() -> None:
    now = datetime.now(UTC)
    good = GenerationResult("x", 3, 1, "tokenizer", now)
    bad = GenerationResult("", 3, 0, "tokenizer", now, error="boom", error_class="RuntimeError")
    assert good.ok and not bad.ok and good.itl_s == [] and good.ttft_s is None


def test_cache_root_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root().name == "gemmawatch"


def test_half_written_model_dir_is_never_valid(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"partial")
    assert not is_valid_model_dir(tmp_path)  # no marker: the conversion did not finish
    (tmp_path / MARKER_NAME).write_text('{"format": 1, "gguf_sha256": "0000"}')
    assert not is_valid_model_dir(tmp_path)  # marker from another GGUF
    (tmp_path / MARKER_NAME).write_text(f'{{"format": 1, "gguf_sha256": "{gguf_sha256()}"}}')
    assert is_valid_model_dir(tmp_path)
