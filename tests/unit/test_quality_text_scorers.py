"""Reference-free text scorers: repetition, length, truncation, language match."""

from __future__ import annotations

import random
import time

import pytest

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality import get_scorer
from gemmawatch.evals.quality.length import is_truncated
from gemmawatch.evals.quality.repetition import longest_repeated_substring, repeated_ngram_ratio

LONG = "The quick brown fox jumps over the lazy dog. " * 2300  # ~103k characters
# Restricting lingua to a few languages keeps these tests at ~0.5 s of model loading instead of ~7 s.
FEW = ["en", "fr", "de", "es"]


# --------------------------------------------------------------------------- repetition


def _brute_lrs(text: str) -> int:
    best = 0
    for length in range(1, len(text)):
        seen = {text[i : i + length] for i in range(len(text) - length + 1)}
        if len(seen) < len(text) - length + 1:
            best = length
    return best


def test_longest_repeated_substring_matches_brute_force() -> None:
    for text, expected in [("banana", 3), ("aaaa", 3), ("abcabcabc", 6), ("abcd", 0), ("", 0), ("a", 0)]:
        assert longest_repeated_substring(text)[0] == expected
    rng = random.Random(7)
    for _ in range(200):
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        length, end = longest_repeated_substring(text)
        assert length == _brute_lrs(text)
        if length:
            piece = text[end - length : end]
            assert text.find(piece) < end - length or text.find(piece, text.find(piece) + 1) != -1


def test_repeated_ngram_ratio_known_values() -> None:
    # "the cat sat the cat sat": trigrams (the cat sat)x2, (cat sat the), (sat the cat) -> 3 distinct of 4.
    assert repeated_ngram_ratio(["the", "cat", "sat", "the", "cat", "sat"], 3) == (0.25, 4)
    assert repeated_ngram_ratio(["a", "b", "c", "d", "e"], 3) == (0.0, 3)
    assert repeated_ngram_ratio(["a", "a", "a", "a"], 1) == (0.75, 4)
    assert repeated_ngram_ratio(["a", "b"], 3) == (0.0, 0)


def test_repetition_flags_a_loop_and_not_normal_text() -> None:
    scorer = get_scorer("repetition")
    loop = scorer.score("I am a model. " * 20)
    assert loop.value is not None and loop.value > 0.8
    assert loop.details["lrs_share"] > 0.9
    normal = scorer.score(
        "Photosynthesis turns light into chemical energy. Plants absorb carbon dioxide and release oxygen, "
        "which animals breathe. Chlorophyll gives leaves their green colour."
    )
    assert normal.value == 0.0 and normal.details["lrs_share"] < 0.15
    assert not scorer.higher_is_better


def test_repetition_edge_cases() -> None:
    scorer = get_scorer("repetition")
    assert scorer.score("").value is None and scorer.score(" \n\t ").value is None
    assert scorer.score("Yes.").value == 0.0  # too short for a trigram: nothing can repeat
    assert scorer.score("Ja ja ja ja ja ja", n=1).value is not None  # unknown context keys are ignored
    cjk = scorer.score("我很好。" * 30)
    assert cjk.details["lrs_share"] > 0.9  # character-level share works without word boundaries
    # folded, the six words are one word: 4 trigrams, 1 distinct
    assert scorer.score("ＡＢＣ abc ABC abc abc abc").value == pytest.approx(0.75)
    with pytest.raises(ConfigError):
        get_scorer("repetition", n=0)
    with pytest.raises(TypeError):
        scorer.score(b"bytes")  # type: ignore[arg-type]


def test_repetition_long_output_is_fast() -> None:
    scorer = get_scorer("repetition")
    start = time.perf_counter()
    result = scorer.score(LONG)
    assert time.perf_counter() - start < 5.0
    assert result.value is not None and result.value > 0.99
    # a string of period p has a longest repeated substring of its length - p
    assert result.details["lrs_chars"] == 20_000 - len("The quick brown fox jumps over the lazy dog. ")


# --------------------------------------------------------------------------- length and truncation


def test_length_units() -> None:
    text = "Hello, wide world!  Ünïcödé wörds count too."
    assert get_scorer("length").score(text).value == 7.0
    assert get_scorer("length", unit="chars").score(text).value == float(len(text))
    tokens = get_scorer("length", unit="tokens")
    assert tokens.score(text).value is None and tokens.score(text).details["reason"] == "output_tokens not given"
    assert tokens.score(text, output_tokens=12).value == 12.0
    assert get_scorer("length").score("").value == 0.0
    assert get_scorer("length").higher_is_better is None
    with pytest.raises(ConfigError):
        get_scorer("length", unit="bytes")


def test_truncation() -> None:
    scorer = get_scorer("truncated", max_new_tokens=64)
    assert scorer.score("...", output_tokens=64).value == 1.0
    assert scorer.score("...", output_tokens=10).value == 0.0
    assert scorer.score("...", output_tokens=10, max_new_tokens=10).value == 1.0  # per-sample limit wins
    assert scorer.score("...", output_tokens=64, finish_reason="stop").value == 0.0  # finish reason wins
    assert scorer.score("...").value is None  # no token count
    assert get_scorer("truncated").score("...", output_tokens=5).value is None  # no limit
    assert get_scorer("truncated").score("...", finish_reason="length").value == 1.0
    details = get_scorer("length", max_new_tokens=8).score("a b", output_tokens=8).details
    assert details == {"chars": 3, "words": 2, "output_tokens": 8, "truncated": True}
    with pytest.raises(ValueError):
        scorer.score("...", output_tokens=-1)
    assert is_truncated(None, None) is None


def test_length_long_output() -> None:
    start = time.perf_counter()
    assert get_scorer("length").score(LONG).value == 9.0 * 2300
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- language match


def test_language_match_true_and_false() -> None:
    scorer = get_scorer("language_match", languages=FEW)
    prompt = "What is the capital of France, and why did it become the capital?"
    same = scorer.score("Paris is the capital because the kings lived there for centuries.", prompt=prompt)
    assert same.value == 1.0 and same.details["expected"] == "en" and same.details["output_language"] == "en"
    other = scorer.score("Die Hauptstadt von Frankreich ist Paris, weil dort die Könige lebten.", prompt=prompt)
    assert other.value == 0.0 and other.details["output_language"] == "de"
    french = scorer.score(
        "La capitale est Paris, parce que les rois y vivaient.", prompt="Quelle est la capitale de la France ?"
    )
    assert french.value == 1.0 and french.details["expected"] == "fr"


def test_language_match_expected_language_overrides_prompt() -> None:
    scorer = get_scorer("language_match", languages=FEW)
    answer = "La capitale de la France est Paris, une très grande ville."
    translate = "Translate into French: the capital of France is Paris."
    assert scorer.score(answer, prompt=translate, expected_language="fr").value == 1.0
    fixed = get_scorer("language_match", languages=FEW, expected_language="de")
    assert fixed.score(answer).value == 0.0 and fixed.score(answer).details["expected_from"] == "given"


def test_language_match_undecidable_cases() -> None:
    scorer = get_scorer("language_match", languages=FEW)
    prompt = "What is the capital of France and what is it famous for?"
    assert scorer.score("", prompt=prompt).details["reason"] == "empty output"
    assert scorer.score("42 + 17 = 59", prompt=prompt).value is None  # digits carry no language
    assert scorer.score("Paris is lovely.", prompt=None).details["reason"] == "no prompt and no expected_language"
    assert scorer.score("Paris is lovely.", prompt="12345").details["reason"] == "no language found in the prompt"
    assert scorer.score("🙂🙂🙂", prompt=prompt).value is None


def test_language_match_unicode_and_long() -> None:
    scorer = get_scorer("language_match", languages=["en", "zh", "ru", "ar"])
    assert scorer.score("巴黎是法国的首都。", prompt="法国的首都是哪里？").value == 1.0
    assert scorer.score("Paris is the capital of France.", prompt="法国的首都是哪里？").value == 0.0
    start = time.perf_counter()
    assert scorer.score(LONG * 10, prompt="Describe the fox in detail, please.").value == 1.0  # 1 MB
    assert time.perf_counter() - start < 3.0


def test_language_match_validation() -> None:
    with pytest.raises(ConfigError, match="ISO 639-1"):
        get_scorer("language_match", languages=["english"])
    with pytest.raises(ConfigError):
        get_scorer("language_match", expected_language="xx")
    with pytest.raises(ConfigError):
        get_scorer("language_match", min_ratio=0.5)
    with pytest.raises(ConfigError):
        get_scorer("language_match", accuracy="medium")


def test_language_match_default_detector_all_languages() -> None:
    # The default (all 75 languages, high accuracy) is what users get: one real check of it.
    scorer = get_scorer("language_match")
    result = scorer.score(
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
        prompt="How many clips did Natalia sell altogether in April and May? Explain your reasoning.",
    )
    assert result.value == 1.0
