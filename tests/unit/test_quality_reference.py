"""Reference-based quality scorers: exact match, token F1, ROUGE-L, BLEU, chrF (known values, edge cases)."""

from __future__ import annotations

import math
import time

import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality import get_scorer
from gemmawatch.evals.quality._text import normalize_answer
from gemmawatch.evals.quality.reference import exact_match, token_f1

LONG = "The quick brown fox jumps over the lazy dog. " * 2300  # ~103k characters


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple,  a pear ", "apple pear"),
        ("Theory of the atom", "theory of atom"),  # "the" only as a word
        ("ＰＡＲＩＳ", "paris"),  # full-width
        ("Straße", "strasse"),  # case folding, not lower()
        ("Pa\u200bris", "paris"),  # zero-width space removed
        ("don’t", "dont"),  # typographic apostrophe is punctuation
        ("«Bonjour» — dit-il", "bonjour ditil"),  # Unicode punctuation deleted
        ("$5 + 3", "5 3"),  # ASCII symbols, as SQuAD's string.punctuation
        ("", ""),
    ],
)
def test_normalize_answer(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


def test_normalize_answer_is_squad_on_ascii() -> None:
    # SQuAD v1.1's official normalize_answer, inlined.
    import re
    import string

    def squad(s: str) -> str:
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    for text in ["The cat's hat, a red one.", "A.B.C. (an) THE-end", "  x  ", "1,000.5 $ & co."]:
        assert normalize_answer(text) == squad(text)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower", 1.0),
        ("Paris", "Paris, France", 0.0),
        ("ＰＡＲＩＳ", "paris", 1.0),
        ("café", "cafe", 0.0),  # accents are not stripped
        ("", "", 1.0),  # both normalise to nothing (SQuAD v2)
        ("", "Paris", 0.0),
        ("the", "", 1.0),  # an article alone normalises to nothing
    ],
)
def test_exact_match(prediction: str, reference: str, expected: float) -> None:
    assert exact_match(prediction, reference) == expected
    assert get_scorer("exact_match").score(prediction, reference).value == expected


def test_exact_match_multiple_references() -> None:
    result = get_scorer("exact_match").score("Lutetia", ["Paris", "lutetia", "City of Light"])
    assert result.value == 1.0 and result.details == {"reference_index": 1}
    assert get_scorer("exact_match").score("Rome", ["Paris", "Lutetia"]).value == 0.0


def test_token_f1_known_values() -> None:
    # pred -> "cat sat on mat", ref -> "cat on mat": overlap 3, P = 3/4, R = 1, F1 = 6/7.
    result = get_scorer("token_f1").score("The cat sat on the mat", "a cat on a mat")
    assert result.value == pytest.approx(6 / 7)
    assert result.details == {"precision": pytest.approx(0.75), "recall": pytest.approx(1.0)}
    assert token_f1("cat cat cat", "cat") == pytest.approx(0.5)  # multiset: P = 1/3, R = 1
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "cat") == 0.0 and token_f1("cat", "") == 0.0


def test_token_f1_best_reference_wins() -> None:
    result = get_scorer("token_f1").score("blue whale", ["elephant", "the blue whale", "whale shark"])
    assert result.value == 1.0 and result.details["reference_index"] == 1


def test_rouge_l_known_values() -> None:
    # LCS(the cat sat on the mat, the cat is on the mat) = 5 of 6 tokens each way.
    result = get_scorer("rouge_l").score("the cat sat on the mat", "the cat is on the mat")
    assert result.value == pytest.approx(5 / 6)
    assert result.details == {"precision": pytest.approx(5 / 6), "recall": pytest.approx(5 / 6)}
    # Lin's example: without stemming "killed" != "kill" (LCS 3/4); with it, all 4 match.
    assert get_scorer("rouge_l").score("police killed the gunman", "police kill the gunman").value == 0.75
    stemmed = get_scorer("rouge_l", use_stemmer=True)
    assert stemmed.score("police killed the gunman", "police kill the gunman").value == 1.0


def test_rouge_l_matches_the_library() -> None:
    lib = rouge_scorer.RougeScorer(["rougeL"])
    ours = get_scorer("rouge_l")
    for pred, ref in [("a b c d", "a c d e"), ("The fox.", "A quick brown fox jumps."), ("x", "y")]:
        assert ours.score(pred, ref).value == lib.score(ref, pred)["rougeL"].fmeasure
    # several references: rouge-score's score_multi (the best F-measure)
    assert ours.score("a b c", ["x y", "a b z"]).value == lib.score_multi(["x y", "a b z"], "a b c")["rougeL"].fmeasure


def test_rouge_l_non_latin_reference_is_none_not_zero() -> None:
    result = get_scorer("rouge_l").score("Столица Франции — Париж", "Париж")
    assert result.value is None and "tokenizer='unicode'" in result.details["reason"]
    unicode = get_scorer("rouge_l", tokenizer="unicode")
    assert unicode.score("Столица Франции — Париж", "Париж").value == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    # a genuine 0 (Latin reference, no overlap) stays 0
    assert get_scorer("rouge_l").score("dog", "cat").value == 0.0


def test_bleu_known_value() -> None:
    # 13a tokens; matches 5/6, 3/5, 2/4, 1/3 for n = 1..4; equal lengths, so BP = 1.
    result = get_scorer("bleu").score("the cat sat on the mat", "the cat sat on a mat")
    assert result.value == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert get_scorer("bleu").score("the cat sat on the mat", "the cat sat on the mat").value == pytest.approx(100.0)
    assert get_scorer("bleu").score("", "the cat").value == 0.0


def test_bleu_and_chrf_match_sacrebleu() -> None:
    pairs = [("Hello there, general Kenobi!", ["Hello there general Kenobi"]), ("a b", ["a b c d", "a b d"])]
    for pred, refs in pairs:
        assert get_scorer("bleu").score(pred, refs).value == BLEU(effective_order=True).sentence_score(pred, refs).score
        assert get_scorer("chrf").score(pred, refs).value == CHRF().sentence_score(pred, refs).score


def test_chrf_known_value() -> None:
    # char n-grams: 1-grams 2/3 match, 2-grams 1/2, 3-grams 0/1 (orders 4-6 absent):
    # mean P = mean R = 7/18, and F_beta of equal P and R is P.
    assert get_scorer("chrf").score("abc", "abd").value == pytest.approx(100 * 7 / 18)
    assert get_scorer("chrf").score("东京是日本的首都", "东京是日本的首都").value == pytest.approx(100.0)


def test_bleu_tokenizer_option_and_validation() -> None:
    zh = get_scorer("bleu", tokenize="zh")
    assert zh.score("东京是日本的首都", "日本的首都是东京").value > 0.0
    assert get_scorer("bleu").score("东京是日本的首都", "日本的首都是东京").value == 0.0  # 13a: one token each
    assert "tok:zh" in zh.signature  # type: ignore[attr-defined]
    with pytest.raises(ConfigError):
        get_scorer("bleu", tokenize="no-such-tokenizer")
    with pytest.raises(ConfigError):
        get_scorer("rouge_l", tokenizer="whitespace")


@pytest.mark.parametrize("name", ["exact_match", "token_f1", "rouge_l", "bleu", "chrf"])
def test_no_reference_gives_none(name: str) -> None:
    scorer = get_scorer(name)
    assert scorer.needs_reference
    for reference in (None, []):
        result = scorer.score("Paris", reference)
        assert result.value is None and result.details == {"reason": "no reference"}
    assert scorer.score("Paris", "").value is not None  # an empty string is a real reference


@pytest.mark.parametrize("name", ["exact_match", "token_f1", "rouge_l", "bleu", "chrf"])
def test_type_errors(name: str) -> None:
    scorer = get_scorer(name)
    with pytest.raises(TypeError):
        scorer.score(None, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scorer.score("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scorer.score("x", ["ok", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["exact_match", "token_f1", "rouge_l", "bleu", "chrf"])
def test_long_and_unicode_outputs(name: str) -> None:
    scorer = get_scorer(name)
    start = time.perf_counter()
    long_result = scorer.score(LONG, "the lazy dog")
    elapsed = time.perf_counter() - start
    assert long_result.value is not None and 0.0 <= long_result.value <= 100.0
    assert elapsed < 5.0, f"{name} took {elapsed:.2f}s on a 100k-character output"
    for text in ["🙂🙂🙂", "\u200b\u200b", "Ｔｈｅ ｌａｚｙ ｄｏｇ", "\x00\x01", "مرحبا بالعالم"]:
        result = scorer.score(text, "the lazy dog")
        assert result.value is None or math.isfinite(result.value)
