"""Length and truncation of an output.

* ``length``: how long the output is, in ``words`` (default), ``chars`` or ``tokens``
  (the model's own count, from the ``output_tokens`` context value). No direction:
  longer is neither better nor worse, but a shift between two model versions is worth
  seeing. ``details`` always carries ``chars`` and ``words``, and ``output_tokens``
  and ``truncated`` when known.
* ``truncated``: 1.0 when generation stopped because it hit ``max_new_tokens``, 0.0 when
  it stopped on its own (EOS or a stop string), ``None`` when unknown. Decided from the
  ``finish_reason`` context value when given (``"length"`` = truncated, as in the
  OpenAI API), else from ``output_tokens >= max_new_tokens`` (``max_new_tokens`` from
  the context or the scorer's argument).

Known limits: words are ``\\w+`` runs, so unsegmented scripts (Chinese, Japanese, Thai)
count a whole clause as one word; use ``unit="chars"`` or ``"tokens"`` there. Without a
finish reason, an answer whose EOS was exactly the last allowed token counts as truncated.
"""

from __future__ import annotations

from typing import Any, Literal

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str, words
from gemmawatch.evals.quality.base import Reference, ScoreResult

__all__ = ["Length", "Truncated", "is_truncated"]

_UNITS = ("words", "chars", "tokens")


def _positive_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def is_truncated(
    output_tokens: int | None, max_new_tokens: int | None, finish_reason: str | None = None
) -> bool | None:
    """Whether a generation hit its token limit; ``None`` when that cannot be told."""
    if finish_reason is not None:
        return finish_reason == "length"
    if output_tokens is None or max_new_tokens is None:
        return None
    return output_tokens >= max_new_tokens


class _LengthBase:
    needs_reference = False

    def __init__(self, max_new_tokens: int | None) -> None:
        try:
            self.max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _facts(self, prediction: str, context: dict[str, Any]) -> dict[str, Any]:
        require_str(prediction, "prediction")
        output_tokens = _positive_int(context.get("output_tokens"), "output_tokens")
        limit = _positive_int(context.get("max_new_tokens", self.max_new_tokens), "max_new_tokens")
        facts: dict[str, Any] = {"chars": len(prediction), "words": len(words(prediction))}
        if output_tokens is not None:
            facts["output_tokens"] = output_tokens
        truncated = is_truncated(output_tokens, limit, context.get("finish_reason"))
        if truncated is not None:
            facts["truncated"] = truncated
        return facts


class Length(_LengthBase):
    """Output length in ``unit`` (``words``, ``chars`` or ``tokens``); see the module docstring."""

    name = "length"
    version = "1"
    higher_is_better = None

    def __init__(self, unit: Literal["words", "chars", "tokens"] = "words", max_new_tokens: int | None = None) -> None:
        if unit not in _UNITS:
            raise ConfigError(f"length unit must be one of {', '.join(_UNITS)}, got {unit!r}")
        super().__init__(max_new_tokens)
        self.unit = unit
        self.args: dict[str, Any] = {"unit": unit, "max_new_tokens": max_new_tokens}

    def __repr__(self) -> str:
        return f"Length(unit={self.unit!r}, max_new_tokens={self.max_new_tokens})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """The length; ``None`` for ``unit="tokens"`` without an ``output_tokens`` context value."""
        facts = self._facts(prediction, context)
        key = "output_tokens" if self.unit == "tokens" else self.unit
        if key not in facts:
            return ScoreResult(None, {**facts, "reason": "output_tokens not given"})
        return ScoreResult(float(facts[key]), facts)


class Truncated(_LengthBase):
    """1.0 when the output hit ``max_new_tokens``, 0.0 when it ended on its own, ``None`` when unknown."""

    name = "truncated"
    version = "1"
    higher_is_better = False

    def __init__(self, max_new_tokens: int | None = None) -> None:
        super().__init__(max_new_tokens)
        self.args: dict[str, Any] = {"max_new_tokens": max_new_tokens}

    def __repr__(self) -> str:
        return f"Truncated(max_new_tokens={self.max_new_tokens})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """See the class docstring; ``details`` as for ``length``."""
        facts = self._facts(prediction, context)
        if "truncated" not in facts:
            return ScoreResult(None, {**facts, "reason": "needs output_tokens and max_new_tokens, or finish_reason"})
        return ScoreResult(float(facts["truncated"]), facts)
