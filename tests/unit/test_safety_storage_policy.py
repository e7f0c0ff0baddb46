"""The store_text option: prompts/outputs kept in clear, redacted, or as (salted) SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gemmawatch.config import GemmawatchConfig, parse_config
from gemmawatch.errors import ConfigError
from gemmawatch.evals.safety.storage_policy import SALT_ENV, STORE_TEXT_MODES, TextPolicy, redact

TEXT = "Mail jane.doe@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111."


def test_modes() -> None:
    assert STORE_TEXT_MODES == ("clear", "redacted", "hash")
    with pytest.raises(ConfigError, match="store_text must be one of clear, redacted, hash, got 'plain'"):
        TextPolicy("plain")


def test_clear_keeps_the_text() -> None:
    assert TextPolicy("clear").apply(TEXT) == TEXT
    assert TextPolicy().mode == "clear"


def test_redacted_masks_personal_data_with_the_pii_spans() -> None:
    stored = TextPolicy("redacted").apply(TEXT)
    # The masks are the pii check's own: the shape stays, at most the last digits are kept.
    assert stored == "Mail j***@e***.com or call +** ** **** **58; card **** **** **** 1111."
    assert "jane" not in stored and "7946" not in stored and "4111 1111" not in stored
    assert TextPolicy("redacted").apply("Nothing personal here.") == "Nothing personal here."


def test_redaction_of_folded_unicode_covers_the_original_characters() -> None:
    # Full-width digits are folded for matching; the whole original span is replaced.
    text = "card ４１１１ １１１１ １１１１ １１１１ end"
    stored = redact(text)
    assert "１" not in stored and stored.startswith("card ") and stored.endswith(" end")


def test_hash_is_sha256_of_the_utf8_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    policy = TextPolicy("hash")
    assert not policy.salted
    assert policy.apply("héllo") == "sha256:" + hashlib.sha256("héllo".encode()).hexdigest()
    assert policy.apply("héllo") == policy.apply("héllo") != policy.apply("hello")


def test_salt_comes_from_the_environment_and_keys_an_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SALT_ENV, "s3cret")
    policy = TextPolicy("hash")
    expected = hmac.new(b"s3cret", b"prompt", hashlib.sha256).hexdigest()
    assert policy.salted and policy.apply("prompt") == "hmac-sha256:" + expected
    assert "s3cret" not in repr(policy) and policy.describe() == {"store_text": "hash", "salted": True}
    assert TextPolicy("hash", salt="other").apply("prompt") != policy.apply("prompt")
    assert TextPolicy("hash", environ={}).apply("prompt").startswith("sha256:")
    assert TextPolicy("hash", environ={SALT_ENV: ""}).salted is False
    assert TextPolicy("clear").describe() == {"store_text": "clear"}


@pytest.mark.parametrize("mode", STORE_TEXT_MODES)
def test_empty_text_stays_empty(mode: str) -> None:
    assert TextPolicy(mode).apply("") == ""


@pytest.mark.parametrize("mode", STORE_TEXT_MODES)
def test_adversarial_text(mode: str) -> None:
    policy = TextPolicy(mode)
    lone_surrogate = "bad \udcff byte"
    assert isinstance(policy.apply(lone_surrogate), str)
    long = "jane@example.com " * 60_000  # ~1 MB
    stored = policy.apply(long)
    if mode == "hash":
        assert len(stored) == len("sha256:") + 64
    elif mode == "redacted":
        assert "jane" not in stored and stored.count("j***@e***.com") == 60_000
    with pytest.raises(TypeError):
        policy.apply(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# The config key
# --------------------------------------------------------------------------- #


def test_config_default_is_clear() -> None:
    assert GemmawatchConfig().store_text == "clear"
    assert parse_config("targets: {}\n").store_text == "clear"


@pytest.mark.parametrize("mode", STORE_TEXT_MODES)
def test_config_accepts_the_three_modes(mode: str) -> None:
    assert parse_config(f"store_text: {mode}\n").store_text == mode
    assert TextPolicy(parse_config(f"store_text: {mode}\n").store_text).mode == mode


def test_config_rejects_other_values_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("store_text: encrypted\n", source="gemmawatch.yaml")
    msg = str(info.value)
    assert msg.startswith("Invalid config in gemmawatch.yaml: store_text:") and "'clear'" in msg and "\n" not in msg
