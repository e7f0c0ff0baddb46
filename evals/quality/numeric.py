"""``numeric_match``: 1 when the output's final number equals the reference number, else 0 (GSM8K, MGSM).

Which number is "the answer", first rule that finds one:

1. ``marker`` - the first number after the last ``####`` (GSM8K's answer line);
2. ``boxed`` - the number in the last ``\\boxed{...}``;
3. ``phrase`` - the first number on the line after the last answer phrase, starting within 32
   characters of it (blank lines, colons and ``**`` skipped): "the
   answer is", "answer:", "final answer" and the MGSM exemplars' phrases in their languages
   ("La respuesta es", "La réponse est", "Die Antwort lautet", "Ответ", "答案是", "答えは",
   "คำตอบคือ", "Jibu ni", "উত্তর হল", "సమాధానం"), case-insensitive;
4. ``last`` - the last number in the text (``fallback_last=False`` turns this off: no phrase,
   no answer).

Reading a number: any Unicode decimal digits (Bengali ১৬, Thai ๑๖, full-width １６, Arabic-Indic
١٦ are 16); a minus sign (``-`` or ``−``) counts only at the start of a word, so ``16-3`` is 16
and 3; currency signs, units and ``%`` are ignored. Separators follow the locale of the
context's ``expected_language`` (MGSM items carry it): without one, or for English-style
languages, ``,`` before exactly three digits groups thousands (``70,000``) and ``.`` is the
decimal point; for comma-decimal languages (de, fr, es, ru, it, pt, nl, pl, ...) ``.`` before
exactly three digits groups thousands (``80.000``), ``,`` is the decimal comma, and a space
before three digits groups too (``80 000``). With both marks in one number the last one is
the decimal mark (``1.234,5``); a mark that repeats groups thousands (``1,234,567``). A
single mark before exactly three digits is ambiguous (``2,125``: MGSM's German file writes
its targets English-style, its problems German-style), so the scorer accepts either reading;
``details["extracted"]`` shows the one that matched.

The reference is read the same way: the number after ``####`` when present (so GSM8K's
``answer`` field works as the reference as is), else the whole reference when it is a
number, else its last number; a reference without a number gives ``None`` with a reason.
Numbers compare as decimals (``18.00`` equals ``18``), within ``abs_tol`` (default 0).

Limits: number words ("eighteen", "三") and fractions (``1/2``) are not read; a last number
that is not the answer (a unit count after it, a restated question) gives a false 0 when no
answer phrase precedes the answer; an ambiguous ``1,500`` matches 1500 and 1.5.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str
from gemmawatch.evals.quality.base import Reference, ScoreResult, references_of

__all__ = ["COMMA_DECIMAL_LANGUAGES", "NumericMatch", "extract_answer", "parse_number", "reference_number"]

#: Languages writing ``3,5`` for three and a half (ISO 639-1).
COMMA_DECIMAL_LANGUAGES = frozenset(
    ("de", "fr", "es", "ru", "it", "pt", "nl", "pl", "cs", "sk", "sl", "hr", "sr", "bg", "uk", "be", "ro", "hu")
    + ("sv", "no", "nb", "nn", "da", "fi", "et", "lv", "lt", "tr", "el", "id", "vi", "az", "kk", "ca", "gl", "eu")
)

_SPACES = "\u00a0\u202f\u2009 "
_NUMBER = re.compile(rf"(?<!\d)\d+(?:[.,'{_SPACES}]\d+)*")
_MINUS = "-\u2212"
_PHRASES = re.compile(
    "|".join(
        [
            r"answer\s+is",
            r"answer\s*[:：]",
            r"final\s+answer",
            r"respuesta\s+es",
            r"r[ée]ponse\s+est",
            r"antwort\s+(?:lautet|ist)",
            r"ответ",
            r"答案是",
            r"答案\s*[:：]",
            r"答えは",
            r"คำตอบคือ",
            r"jibu\s+ni",
            r"উত্তর\s+হল",
            r"సమాధానం",
        ]
    ),
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_SHOWN = 40
_NEAR = 32
_LEAD = " \t\r\n:\uff1a*_"  # between a phrase and its number: blanks, colons, markdown emphasis


def _digits(text: str) -> str:
    """ASCII digits for any Unicode decimal digits in ``text`` (ASCII passes through)."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.digit(ch)) if ch.isdecimal() else ch for ch in text)


def parse_number(token: str, language: str | None = None) -> Decimal | None:
    """One number token (digits and separators, as :data:`_NUMBER` finds them) as a Decimal.

    ``language`` picks the separator convention (see the module docstring). None when the
    token does not read as a number (``1 2`` in English).
    """
    token = _digits(token)
    marks = [ch for ch in token if not ch.isdigit()]
    groups = re.split(rf"[.,'{_SPACES}]", token)
    comma_decimal = (language or "").split("-")[0].lower() in COMMA_DECIMAL_LANGUAGES
    decimal_mark: str | None = None
    if marks:
        last = marks[-1]
        if any(m in _SPACES for m in marks) and (
            not comma_decimal or any(len(g) != 3 for g in re.split(rf"[{_SPACES}]", token)[1:])
        ):
            return None  # "1 234" is two numbers outside space-grouping locales, "1 23" everywhere
        if len(set(marks)) > 1 and marks.count(last) == 1 and last in ".,":
            decimal_mark = last
        elif len(marks) == 1 and last in ".,":
            grouping = "." if comma_decimal else ","
            decimal_mark = None if (last == grouping and len(groups[-1]) == 3) else last
    if decimal_mark is not None:
        whole, _, fraction = token.rpartition(decimal_mark)
        text = re.sub(r"\D", "", whole) + "." + fraction
    else:
        text = re.sub(r"\D", "", token)
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


#: A number as read, and its other reading when the token is ambiguous (``2,125``: 2125 or 2.125).
_Reading = tuple[Decimal, Decimal | None]


def _alternative(token: str, language: str | None) -> Decimal | None:
    """The other convention's reading of a token with one ``,``/``.`` before exactly three digits."""
    marks = [ch for ch in token if not ch.isdigit()]
    if len(marks) != 1 or marks[0] not in ".," or len(token.rpartition(marks[0])[2]) != 3:
        return None
    comma_decimal = (language or "").split("-")[0].lower() in COMMA_DECIMAL_LANGUAGES
    return parse_number(token, None if comma_decimal else "de")


def _readings(text: str, language: str | None) -> list[_Reading]:
    found: list[_Reading] = []
    for match in _NUMBER.finditer(text):
        token = _digits(match.group())
        value = parse_number(token, language)
        if value is None:  # "12 3": read the space-separated parts as numbers of their own
            parts = [parse_number(p, language) for p in re.split(f"[{_SPACES}]", token)]
            found.extend((p, None) for p in parts if p is not None)
            continue
        other = _alternative(token, language)
        start = match.start()
        if start and text[start - 1] in _MINUS and (start == 1 or not text[start - 2].isalnum()):
            value, other = -value, (-other if other is not None else None)
        found.append((value, other))
    return found


def _numbers(text: str, language: str | None) -> list[Decimal]:
    return [value for value, _ in _readings(text, language)]


def _extract(text: str, language: str | None, fallback_last: bool) -> tuple[_Reading | None, str]:
    if "####" in text:
        numbers = _readings(text.rpartition("####")[2], language)
        if numbers:
            return numbers[0], "marker"
    boxed = _BOXED.findall(text)
    if boxed:
        numbers = _readings(boxed[-1], language)
        if numbers:
            return numbers[-1], "boxed"
    phrase = None
    for match in _PHRASES.finditer(text):
        phrase = match  # the last one
    if phrase is not None:
        # Close after the phrase, on its line: "The answer is N", where N is..." echoed is no answer.
        line = text[phrase.end() : phrase.end() + 200].lstrip(_LEAD).split("\n", 1)[0]
        first = _NUMBER.search(line)
        numbers = _readings(line[max(first.start() - 1, 0) :], language) if first and first.start() <= _NEAR else []
        if numbers:
            return numbers[0], "phrase"
    if fallback_last:
        numbers = _readings(text, language)
        if numbers:
            return numbers[-1], "last"
    return None, ""


def extract_answer(text: str, language: str | None = None, *, fallback_last: bool = True) -> tuple[Decimal | None, str]:
    """The answer number in ``text`` and the rule that found it (``marker``, ``boxed``, ``phrase``, ``last``).

    ``(None, "")`` when there is none. An ambiguous ``2,125`` is read by ``language``'s
    convention here; the scorer also accepts its other reading.
    """
    reading, how = _extract(text, language, fallback_last)
    return (reading[0] if reading is not None else None), how


def reference_number(reference: str) -> Decimal | None:
    """The number a reference stands for: after ``####``, the whole string, or its last number."""
    if "####" in reference:
        numbers = _numbers(reference.rpartition("####")[2], None)
        return numbers[0] if numbers else None
    stripped = reference.strip()
    whole = _NUMBER.fullmatch(stripped.lstrip(_MINUS))
    if whole is not None:
        value = parse_number(whole.group())
        if value is not None:
            return -value if stripped[0] in _MINUS else value
    numbers = _numbers(reference, None)
    return numbers[-1] if numbers else None


def _shown(value: Decimal) -> str:
    # normalize() rounds to the context's 28 digits: only for numbers that fit.
    text = format(value.normalize(), "f") if len(value.as_tuple().digits) <= 28 else str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _close(a: Decimal, b: Decimal, tol: Decimal) -> bool:
    if a == b:  # exact, whatever the number of digits
        return True
    if not tol:
        return False
    with localcontext() as ctx:  # subtract without rounding to 28 digits
        ctx.prec = max(len(a.as_tuple().digits), len(b.as_tuple().digits), 28) + 2
        return abs(a - b) <= tol


class NumericMatch:
    """1.0 when the output's answer number equals the reference number (see the module docstring).

    Args:
        abs_tol: Largest absolute difference still counted as equal (default 0: exact).
        fallback_last: Take the last number when no marker or answer phrase is found.
    """

    name = "numeric_match"
    version = "1"
    needs_reference = True
    higher_is_better = True

    def __init__(self, abs_tol: float = 0.0, fallback_last: bool = True) -> None:
        try:
            tol = Decimal(str(abs_tol))
        except InvalidOperation:
            tol = Decimal(-1)
        if not tol.is_finite() or tol < 0:
            raise ConfigError(f"numeric_match: abs_tol must be a number >= 0, got {abs_tol!r}")
        self.abs_tol = tol
        self.fallback_last = bool(fallback_last)
        self.args: dict[str, Any] = {"abs_tol": float(abs_tol), "fallback_last": self.fallback_last}

    def __repr__(self) -> str:
        return f"NumericMatch(abs_tol={float(self.abs_tol)}, fallback_last={self.fallback_last})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """1.0 / 0.0; ``details``: ``extracted``, ``reference``, ``how`` (or ``reason`` when no number)."""
        require_str(prediction, "prediction")
        refs = references_of(reference)
        if refs is None:
            return ScoreResult(None, {"reason": "no reference"})
        targets = [number for number in map(reference_number, refs) if number is not None]
        if not targets:
            return ScoreResult(None, {"reason": "reference has no number"})
        language = context.get("expected_language")
        reading, how = _extract(prediction, language if isinstance(language, str) else None, self.fallback_last)
        if reading is None:
            return ScoreResult(0.0, {"reason": "no number in output", "reference": _shown(targets[0])})
        for answer in (value for value in reading if value is not None):
            for target in targets:
                if _close(answer, target, self.abs_tol):
                    return ScoreResult(1.0, {"extracted": _shown(answer), "reference": _shown(target), "how": how})
        return ScoreResult(0.0, {"extracted": _shown(reading[0]), "reference": _shown(targets[0]), "how": how})
