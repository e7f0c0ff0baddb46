"""The safety-check interface: one ``check(text)`` call in, one :class:`CheckResult` out.

A safety check is any object with ``name``, ``version``, ``applies_to`` and a
``check`` method (:class:`SafetyCheck` is a Protocol, not a base class). Checks
are pure and stateless between calls, so one instance can be shared by a suite
and by the monitor that runs the same checks on canary outputs.

Contract every check keeps (and its tests pin down):

* **Empty text** is valid input: the result is not flagged and ``score`` is the
  check's "nothing found" value (``0.0``). Whether an empty answer is itself a
  problem is for another check to decide.
* **Very long text** is processed in time linear in its length: patterns are
  precompiled, every repetition is bounded or possessive (no catastrophic
  backtracking), and checks that only need part of the text (the refusal check
  reads the beginning of long answers) never scan the rest. A 1 MB output is a
  normal input, not an attack.
* **Unicode**: text is compared after NFKC folding (full-width digits and
  letters, no-break spaces and ligatures become their ASCII forms), with
  invisible format characters (zero-width space, joiners, soft hyphen) removed
  and typographic apostrophes and dashes mapped to ASCII. Cross-script look-alikes
  (a Cyrillic ``а`` inside an English word) are *not* folded; see each check's
  known limits.
* **Never raises on a string**: any ``str`` gives a result; a non-string raises
  ``TypeError``.
* ``details`` is JSON-serialisable and never holds a sensitive value in clear:
  a check that finds personal data reports its category, its position and a
  masked form (``****-****-****-1111``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["AppliesTo", "CheckResult", "SafetyCheck", "SafetyCheckFactory"]

#: Which side of an exchange a check is meant for: the user's prompt, the model's output, or both.
AppliesTo = Literal["prompt", "output", "both"]


@dataclass(frozen=True)
class CheckResult:
    """What one safety check found in one text.

    Attributes:
        check: Name of the check that produced this result (its registry name, e.g. ``"pii"``).
        flagged: Whether the text trips the check (contains PII, is a refusal...).
        score: The check's measurement: a count (``pii``: number of matches), a 0/1 value
            (``refusal``) or a probability; ``None`` when the check could not score the text.
        details: JSON-serialisable evidence (matched categories, spans, masked values,
            the matched phrase). Never a sensitive value in clear.
    """

    check: str
    flagged: bool
    score: float | None
    details: dict[str, Any] = field(default_factory=dict, hash=False)


@runtime_checkable
class SafetyCheck(Protocol):
    """A safety check: a stable ``name``, a ``version`` bumped whenever results may change,
    what it ``applies_to``, and a ``check`` method.

    ``check(text, prompt=...)`` examines ``text``; ``prompt`` is the prompt that produced
    it (when ``text`` is an output), which a check may use for context, e.g. to tell an
    echoed value from a leaked one. It must follow the contract in this module's docstring:
    empty text allowed, linear time, Unicode-folded, never raises on a ``str``.
    """

    name: str
    version: str
    applies_to: AppliesTo

    def check(self, text: str, *, prompt: str | None = None) -> CheckResult:
        """Examine ``text`` and say whether it is flagged, with a score and evidence."""
        ...


#: What the registry holds: a class or function building a check from keyword arguments.
SafetyCheckFactory = Callable[..., SafetyCheck]
