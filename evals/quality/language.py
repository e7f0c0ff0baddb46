"""Language match: does the answer come back in the language it was asked in?

The expected language is the ``expected_language`` context value (ISO 639-1, e.g. from
an MGSM item) or the scorer's ``expected_language`` argument; failing both, it is the
language ``lingua-language-detector`` finds in the prompt. Then, on the output:

* 1.0 when the output's most likely language is the expected one;
* 0.0 when the output is confidently in another language;
* ``None`` when either side cannot be told: empty text, no letters ("42"), or a
  low-confidence detection (``details["reason"]`` says which).

"Confident" means the most likely language is at least ``min_ratio`` (2.0) times as
likely as the runner-up in lingua's relative confidence values. Lingua spreads its
confidence over all 75 languages it knows, so for a short sentence even the right
answer often holds only 10-20 % of it; a ratio copes with that where an absolute
threshold would leave most short answers undecided.

Known limits: short answers ("Paris.", "Yes") are often undecidable (``None``) or
misread, and closely related languages (Bulgarian/Russian, Spanish/Catalan,
Norwegian/Danish) are confused on short text. Restricting ``languages`` to the ones
you expect makes short texts far more decidable. Prompts that ask for another
language ("Translate into French: ...") need ``expected_language``. Code, numbers and
names carry little signal. Only the first ``max_chars`` characters of each side are read.
Lingua's high-accuracy models for all languages take several seconds and about 1 GB
of memory to load, once per process per configuration (``accuracy="low"`` uses ~70 MB
but misreads short sentences).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str
from gemmawatch.evals.quality.base import Reference, ScoreResult

if TYPE_CHECKING:
    from lingua import Language, LanguageDetector

__all__ = ["LanguageMatch", "detector"]

_DETECTORS: dict[tuple[tuple[str, ...] | None, str], LanguageDetector] = {}
_LOCK = threading.Lock()


def _iso_codes(codes: Sequence[str]) -> list[Any]:
    from lingua import IsoCode639_1

    out = []
    for code in codes:
        try:
            out.append(IsoCode639_1.from_str(str(code).upper()))
        except ValueError:
            raise ConfigError(f"Unknown ISO 639-1 language code {code!r}. Fix: use codes like 'en', 'zh'") from None
    return out


def detector(languages: Sequence[str] | None = None, accuracy: str = "high") -> LanguageDetector:
    """The process-wide lingua detector for ``languages`` (ISO 639-1 codes; ``None`` = all) and ``accuracy``."""
    key = (tuple(sorted(code.lower() for code in languages)) if languages else None, accuracy)
    with _LOCK:
        found = _DETECTORS.get(key)
        if found is not None:
            return found
        from lingua import LanguageDetectorBuilder

        builder = (
            LanguageDetectorBuilder.from_iso_codes_639_1(*_iso_codes(key[0]))
            if key[0]
            else LanguageDetectorBuilder.from_all_languages()
        )
        if accuracy == "low":
            builder = builder.with_low_accuracy_mode()
        built = builder.build()
        _DETECTORS[key] = built
        return built


def _code(language: Language) -> str:
    return str(language.iso_code_639_1.name).lower()


class LanguageMatch:
    """1.0 when the output is in the prompt's (or the expected) language; see the module docstring.

    Args:
        languages: ISO 639-1 codes the detector chooses among (``None``: all 75 lingua knows).
        expected_language: Fixed expected language (ISO 639-1), instead of detecting the prompt's.
        min_ratio: How many times likelier than the runner-up a language must be to count as detected.
        max_chars: Characters read from the start of the prompt and of the output.
        accuracy: ``"high"`` (default) or ``"low"`` (lingua's low-accuracy mode: small and fast,
            unreliable below a sentence or two).
    """

    name = "language_match"
    version = "1"
    needs_reference = False
    higher_is_better = True

    def __init__(
        self,
        languages: Sequence[str] | None = None,
        expected_language: str | None = None,
        min_ratio: float = 2.0,
        max_chars: int = 2000,
        accuracy: Literal["high", "low"] = "high",
    ) -> None:
        if accuracy not in ("high", "low"):
            raise ConfigError(f"language_match accuracy must be 'high' or 'low', got {accuracy!r}")
        if not min_ratio >= 1.0:
            raise ConfigError(f"language_match min_ratio must be >= 1, got {min_ratio!r}")
        if not isinstance(max_chars, int) or max_chars < 1:
            raise ConfigError(f"language_match max_chars must be a positive integer, got {max_chars!r}")
        langs = sorted({code.lower() for code in languages}) if languages else None
        if langs is not None:
            _iso_codes(langs)  # validate now, not at the first score
        if expected_language is not None:
            _iso_codes([expected_language])
        self.args: dict[str, Any] = {
            "languages": langs,
            "expected_language": expected_language.lower() if expected_language else None,
            "min_ratio": float(min_ratio),
            "max_chars": max_chars,
            "accuracy": accuracy,
        }

    def __repr__(self) -> str:
        return "LanguageMatch(" + ", ".join(f"{k}={v!r}" for k, v in self.args.items()) + ")"

    def _detect(self, text: str) -> tuple[str | None, float, bool, dict[str, float]]:
        """(top language code, its confidence, confident?, top-3 candidates) of ``text``."""
        values = detector(self.args["languages"], self.args["accuracy"]).compute_language_confidence_values(
            text[: self.args["max_chars"]]
        )
        if not values or values[0].value <= 0.0:
            return None, 0.0, False, {}
        top = values[0]
        second = values[1].value if len(values) > 1 else 0.0
        confident = second <= 0.0 or top.value >= self.args["min_ratio"] * second
        candidates = {_code(v.language): round(float(v.value), 4) for v in values[:3]}
        return _code(top.language), float(top.value), confident, candidates

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """1.0 / 0.0 / ``None``; ``details``: ``expected``, ``expected_from``, ``output_language``, candidates."""
        require_str(prediction, "prediction")
        expected = context.get("expected_language") or self.args["expected_language"]
        details: dict[str, Any] = {}
        if expected:
            details.update(expected=str(expected).lower(), expected_from="given")
        else:
            if prompt is None or not require_str(prompt, "prompt").strip():
                return ScoreResult(None, {"reason": "no prompt and no expected_language"})
            code, _, confident, candidates = self._detect(prompt)
            details.update(expected=code, expected_from="prompt", prompt_candidates=candidates)
            if code is None:
                return ScoreResult(None, {**details, "reason": "no language found in the prompt"})
            if not confident:
                return ScoreResult(None, {**details, "reason": "prompt language uncertain"})
        if not prediction.strip():
            return ScoreResult(None, {**details, "reason": "empty output"})
        code, _, confident, candidates = self._detect(prediction)
        details.update(output_language=code, output_candidates=candidates)
        if code is None:
            return ScoreResult(None, {**details, "reason": "no language found in the output"})
        if code == details["expected"]:
            return ScoreResult(1.0, details)
        if confident:
            return ScoreResult(0.0, details)
        return ScoreResult(None, {**details, "reason": "output language uncertain"})
