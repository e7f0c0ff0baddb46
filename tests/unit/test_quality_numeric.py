"""numeric_match: which number is the answer, locale separators, references (GSM8K's ####, MGSM targets)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality import get_scorer
from gemmawatch.evals.quality.numeric import extract_answer, parse_number, reference_number

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def score(output: str, reference: Any, language: str | None = None, **kw: Any) -> float | None:
    result = get_scorer("numeric_match", **kw).score(output, reference, expected_language=language)
    json.dumps(result.details)
    return result.value


@pytest.mark.parametrize(
    ("text", "language", "number", "how"),
    [
        ("The answer is 18.", None, "18", "phrase"),
        ("9 * 2 = 18 dollars. The answer is $18.", None, "18", "phrase"),
        ("So 16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\nFinal answer: 18 dollars per day", None, "18", "phrase"),
        ("The answer is 18. (Check: 16 - 7 = 9.)", None, "18", "phrase"),  # the phrase beats the last number
        ("She sold 9 eggs for $2 each, 18 in total", None, "18", "last"),
        ("16-3-4=9", None, "9", "last"),  # a minus inside a word is not a sign
        ("It fell to -5 degrees", None, "-5", "last"),
        ("It fell to −5 degrees", None, "-5", "last"),  # U+2212
        ("blah\n#### 1,234", None, "1234", "marker"),
        ("So \\boxed{42} is it, not 7", None, "42", "boxed"),
        ("The answer is 70,000.", None, "70000", "phrase"),
        ("The answer is 1,234,567.5", None, "1234567.5", "phrase"),
        ("The answer is 3.5", None, "3.5", "phrase"),
        ("Die Antwort lautet 80.000 Euro.", "de", "80000", "phrase"),
        ("Die Antwort lautet 3,5.", "de", "3.5", "phrase"),
        ("Die Antwort lautet 1.234,5", "de", "1234.5", "phrase"),
        ("La réponse est 70 000 $.", "fr", "70000", "phrase"),
        ("La respuesta es 80\u00a0000.", "es", "80000", "phrase"),
        ("Ответ: 12", "ru", "12", "phrase"),
        ("答案是18。", "zh", "18", "phrase"),
        ("答えは１８です", "ja", "18", "phrase"),  # full-width digits
        ("উত্তর হল ১৮", "bn", "18", "phrase"),  # Bengali digits
        ("คำตอบคือ ๑๘", "th", "18", "phrase"),  # Thai digits
        ("Jibu ni 18.", "sw", "18", "phrase"),
        ("I have 2 300 apples", None, "300", "last"),  # a space groups digits only in space-grouping locales
        ("The answer is 15%", None, "15", "phrase"),
        ("Final answer:\n\n**18**", None, "18", "phrase"),
        ('End with "The answer is N", where N is the number.\n\nJanet has 16 eggs, sells 9: 18', None, "18", "last"),
    ],
)
def test_extract_answer(text: str, language: str | None, number: str, how: str) -> None:
    assert extract_answer(text, language) == (Decimal(number), how)


@pytest.mark.parametrize("text", ["", "   ", "no numbers at all", "eighteen", "🙂" * 50, "a\x00b", "The answer is ?"])
def test_no_number_is_a_wrong_answer(text: str) -> None:
    result = get_scorer("numeric_match").score(text, "18")
    assert result.value == 0.0 and result.details["reason"] == "no number in output"


def test_without_fallback_only_markers_and_phrases_count() -> None:
    assert score("I think 18", "18", fallback_last=False) == 0.0
    assert score("The answer is 18", "18", fallback_last=False) == 1.0


def test_numbers_compare_as_decimals() -> None:
    assert score("The answer is 18.00", "18") == 1.0
    assert score("The answer is 18.5", "18") == 0.0
    assert score("The answer is 18.5", "18", abs_tol=0.5) == 1.0
    big = "1" * 60
    assert score(f"The answer is {big}", big) == 1.0
    assert score(f"The answer is {big}1", big + "2") == 0.0  # no rounding to 28 digits
    # One mark before exactly three digits reads both ways: MGSM's German targets are written "2,125".
    assert score("Die Antwort lautet 2,125", "2125", "de") == 1.0
    assert score("Die Antwort lautet 2,125", "2.125", "de") == 1.0
    assert score("The answer is 1,500", "1.5") == 1.0 and score("The answer is 1,50", "150") == 0.0
    assert score("The answer is -1.500", "-1500") == 1.0
    with pytest.raises(ConfigError, match="abs_tol"):
        get_scorer("numeric_match", abs_tol=-1)


def test_references() -> None:
    assert reference_number("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n#### 18") == Decimal(18)
    assert reference_number("#### 1,450,000") == Decimal(1450000)
    assert reference_number(" -7 ") == Decimal(-7)
    assert reference_number("about 12 apples") == Decimal(12)
    assert reference_number("none") is None
    assert get_scorer("numeric_match").score("18", None).details == {"reason": "no reference"}
    assert get_scorer("numeric_match").score("18", "n/a").details == {"reason": "reference has no number"}
    assert score("The answer is 5", ["4", "5"]) == 1.0  # any reference


def test_parse_number_conventions() -> None:
    assert parse_number("1,500") == Decimal(1500) and parse_number("1,500", "de") == Decimal("1.5")
    assert parse_number("1.500") == Decimal("1.5") and parse_number("1.500", "de") == Decimal(1500)
    assert parse_number("1,5") == Decimal("1.5")
    assert parse_number("1 500") is None and parse_number("1 500", "fr") == Decimal(1500)
    assert parse_number("1 50", "fr") is None


def test_very_long_output_is_fast() -> None:
    text = "Step: 3 + 4 = 7, carry on. " * 4000 + "The answer is 18."  # ~108k characters
    start = time.perf_counter()
    assert score(text, "18") == 1.0
    assert score("9" * 100_000, "9") == 0.0
    assert time.perf_counter() - start < 1.0


@pytest.mark.skipif(not (DATA / "gsm8k").is_dir(), reason=f"GSM8K data not found at {DATA / 'gsm8k'}")
def test_gsm8k_solutions_score_against_their_own_answer_line() -> None:
    scorer = get_scorer("numeric_match")
    with (DATA / "gsm8k" / "test.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    for row in rows:
        assert reference_number(row["answer"]) is not None
        assert scorer.score(row["answer"], row["answer"]).value == 1.0
        final = row["answer"].rpartition("####")[2].strip()
        assert scorer.score(f"Some steps.\nThe answer is {final}.", row["answer"]).value == 1.0


@pytest.mark.skipif(not (DATA / "mgsm").is_dir(), reason=f"MGSM data not found at {DATA / 'mgsm'}")
def test_mgsm_targets_are_numbers_and_match_themselves() -> None:
    scorer = get_scorer("numeric_match")
    for file in sorted((DATA / "mgsm").glob("mgsm_*.jsonl")):
        language = file.stem.removeprefix("mgsm_")
        for line in file.read_text(encoding="utf-8").splitlines():
            target = json.loads(line)["target"]
            assert reference_number(target) is not None, (file.name, target)
            result = scorer.score(f"The answer is {target}.", target, expected_language=language)
            assert result.value == 1.0, (file.name, target, result.details)
