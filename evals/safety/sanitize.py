"""Input sanitisation: strip active markup and ``javascript:`` URLs from a prompt, and cap its length.

Two things live here:

* :class:`InputFilter` / :class:`FilterResult` - the filter interface: ``apply(text)``
  returns the cleaned text, whether anything changed and what was removed. A filter
  rewrites the prompt *before* it reaches the model (a safety check only reports).
* :class:`HTMLSanitizer` - the built-in filter; :class:`InjectionCheck` (registered as
  the safety check ``injection``) flags a prompt that the filter would change.

What :class:`HTMLSanitizer` removes (``removed`` names each removal, in order):

======================  ==============================================================
``"script"``            a ``<script>`` element *with its content*, up to ``</script>``
                        (an unclosed one runs to the end of the text, as in a browser);
                        also a stray ``</script>``
``"iframe"``            an ``<iframe ...>`` or ``</iframe>`` tag (content is kept: it is
``"object"``            only fallback text); likewise ``<object>`` and ``<embed>``
``"embed"``
``"javascript:"``       the scheme of a ``javascript:`` URL, however it is written:
                        any case, ASCII tab/CR/LF or other control and zero-width
                        characters inside (``java\\tscript:``), letters and colon as HTML
                        character references (``&#106;avascript&colon;``,
                        ``jav&#x61;script&#58;``, ``java&Tab;script:``)
``"neutralised"``       see "Rebuilt markup" below
``"truncated"``         text beyond ``max_chars`` (cut first, then cleaned)
======================  ==============================================================

Matching is case-insensitive and tolerant: whitespace after ``<`` and around ``/``
(which browsers would not accept, but other consumers might), any attributes, quoted or
not and across lines (``<script/src=x>``), and a tag with no closing ``>`` (removed to
the end of the text, since a browser would read everything up to the next ``>`` as part
of it). A tag name ends as in HTML, at whitespace, ``/`` or ``>``: ``<script-x>``,
``<scripts>`` and the code ``i < script.length`` are not script tags. Nested elements are handled: the innermost
``</script>`` ends a script, and what follows it is cleaned like any other text.

**Rebuilt markup.** Removing ``<script>`` from ``<scr<script></script>ipt>`` joins the
pieces into a new ``<script>`` tag, so the filter repeats until nothing changes. An
input built to need more than :data:`MAX_PASSES` rounds is adversarial: the filter
then deletes every ``<``, ``:`` and ``&`` that remains (``"neutralised"``), after which
neither a tag nor a ``javascript:`` scheme can be formed. The output therefore never
contains what the filter removes.

**Time** is linear in the length of the text: every repetition is possessive or
lazy-to-a-fixed-delimiter, a pass is one regex scan, and there are at most
:data:`MAX_PASSES` passes. A megabyte of ``<<<<`` or of nested tags is cleaned in
well under a second.

Known limits: this is a blacklist for prompts, not an HTML sanitiser for rendering
untrusted markup (use a whitelist sanitiser such as ``nh3`` for that). Event-handler
attributes on other tags (``<img onerror=...>``), ``<style>``, ``vbscript:``/``data:``
URLs and entity-encoded tags (``&lt;script&gt;``, inert as HTML) are left alone.
``javascript:`` is removed wherever it appears, also in prose ("the javascript: scheme"),
and prose such as "a < script that..." reads as a tag (and, unclosed, is removed to the end).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gemmawatch.errors import ConfigError
from gemmawatch.evals.safety._text import require_str
from gemmawatch.evals.safety.base import AppliesTo, CheckResult

__all__ = [
    "DANGEROUS_TAGS",
    "DEFAULT_MAX_CHARS",
    "MAX_PASSES",
    "FilterResult",
    "HTMLSanitizer",
    "InjectionCheck",
    "InputFilter",
    "sanitize",
]

#: Elements whose tags are removed (``script`` together with its content).
DANGEROUS_TAGS: tuple[str, ...] = ("script", "iframe", "object", "embed")
#: Default length limit of :class:`HTMLSanitizer` (characters).
DEFAULT_MAX_CHARS = 10_000
#: Cleaning rounds before rebuilt markup is neutralised (see the module docstring).
MAX_PASSES = 4


@dataclass(frozen=True)
class FilterResult:
    """The outcome of one :meth:`InputFilter.apply`.

    Attributes:
        text: The filtered text.
        changed: Whether ``text`` differs from the input.
        removed: One entry per removal, in order, naming what was removed
            (``"script"``, ``"iframe"``, ``"javascript:"``, ``"truncated"``...); never the
            removed text itself.
        truncated: Whether the length limit cut the text.
    """

    text: str
    changed: bool
    removed: list[str] = field(default_factory=list, hash=False)
    truncated: bool = False


@runtime_checkable
class InputFilter(Protocol):
    """Rewrites a prompt before it reaches the model.

    ``apply`` is pure, accepts any ``str`` (empty and very long included, in linear
    time), never raises on a string and raises ``TypeError`` on anything else.
    """

    name: str
    version: str

    def apply(self, text: str) -> FilterResult:
        """The filtered text, whether it changed and what was removed."""
        ...


# --------------------------------------------------------------------------- #
# Patterns
# --------------------------------------------------------------------------- #

_NAMES = "|".join(DANGEROUS_TAGS)
# A tag name ends where HTML ends it: at whitespace, "/" or ">" (so <script-x> and
# "i < script.length" are not script tags).
_END = r"(?=[\s/>]|\Z)"
# A script element with its content (or to the end of the text when unclosed), else any
# open/close tag of the dangerous elements (including a stray </script>). `[^>]*+` is
# possessive and the content scan is lazy up to a fixed delimiter: one scan per match.
_TAGS = re.compile(
    rf"(?P<script><\s*+script{_END}[^>]*+(?:>.*?(?:<\s*+/\s*+script{_END}[^>]*+>?|\Z)|\Z))"
    rf"|<\s*+/?\s*+(?P<tag>{_NAMES}){_END}[^>]*+>?",
    re.IGNORECASE | re.DOTALL,
)

# What a browser's URL parser skips inside a scheme (tab, CR, LF) plus, to be safe, any
# other C0 control and the zero-width/format characters; also as character references.
_IGNORABLE = (
    r"(?:[\x00-\x1f\u00ad\u200b-\u200f\u2060-\u2064\ufeff]"
    r"|&(?:tab|newline|shy|zwsp|zwnj|zwj);"
    r"|&#0*(?:[0-9]|[12][0-9]|3[01]|173)(?:;|(?![0-9]))"
    r"|&#x0*(?:1?[0-9a-f]|ad)(?:;|(?![0-9a-f])))*+"
)


def _char_forms(ch: str) -> str:
    """``ch`` as itself or as a decimal/hex character reference (either case)."""
    codes = sorted({ord(ch.lower()), ord(ch.upper())})
    dec = "|".join(str(c) for c in codes)
    hexa = "|".join(f"{c:x}" for c in codes)
    return rf"(?:{re.escape(ch)}|&#0*(?:{dec})(?:;|(?![0-9]))|&#x0*(?:{hexa})(?:;|(?![0-9a-f])))"


_COLON = r"(?::|&colon;|&#0*58(?:;|(?![0-9]))|&#x0*3a(?:;|(?![0-9a-f])))"
_JAVASCRIPT = re.compile(_IGNORABLE.join(_char_forms(c) for c in "javascript") + _IGNORABLE + _COLON, re.IGNORECASE)


def _strip_pass(text: str, removed: list[str]) -> str:
    def tag(m: re.Match[str]) -> str:
        removed.append("script" if m.group("script") is not None else m.group("tag").lower())
        return ""

    def scheme(_m: re.Match[str]) -> str:
        removed.append("javascript:")
        return ""

    text = _TAGS.sub(tag, text)
    return _JAVASCRIPT.sub(scheme, text)


def _dangerous(text: str) -> bool:
    return _TAGS.search(text) is not None or _JAVASCRIPT.search(text) is not None


_NEUTRALISE = str.maketrans("", "", "<:&")


class HTMLSanitizer:
    """The built-in :class:`InputFilter`: see the module docstring for what it removes.

    Args:
        max_chars: Length limit; longer text is cut to its first ``max_chars`` characters
            (``truncated`` set, ``"truncated"`` in ``removed``). ``None``: no limit.
    """

    name = "html_sanitizer"
    version = "1"

    def __init__(self, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> None:
        if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 0):
            raise ConfigError(f"sanitizer: max_chars must be an integer >= 0 or None, got {max_chars!r}")
        self.max_chars = max_chars

    def __repr__(self) -> str:
        return f"HTMLSanitizer(max_chars={self.max_chars!r})"

    def apply(self, text: str) -> FilterResult:
        """Clean ``text``; see :class:`FilterResult`."""
        original = require_str(text)
        removed: list[str] = []
        truncated = self.max_chars is not None and len(original) > self.max_chars
        text = original[: self.max_chars] if truncated else original
        if truncated:
            removed.append("truncated")
        for _ in range(MAX_PASSES):
            before = len(removed)
            text = _strip_pass(text, removed)
            if len(removed) == before:
                break
        else:
            if _dangerous(text):
                text = text.translate(_NEUTRALISE)
                removed.append("neutralised")
        return FilterResult(text=text, changed=text != original, removed=removed, truncated=truncated)


def sanitize(text: str, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> FilterResult:
    """``HTMLSanitizer(max_chars=max_chars).apply(text)``."""
    return HTMLSanitizer(max_chars=max_chars).apply(text)


class InjectionCheck:
    """Flags a prompt that the input filter would change; ``score`` is 1.0 if so, else 0.0.

    The prompt-side twin of :class:`HTMLSanitizer`: it reports markup/script injection
    (``<script>``, ``<iframe>``, ``<object>``, ``<embed>``, ``javascript:`` URLs) without
    rewriting anything. ``details``: ``{"removed": {kind: count}, "truncated": bool}``.

    Args:
        max_chars: Also flag prompts longer than this (``None``, the default: length is
            not an injection).
    """

    name = "injection"
    version = "1"
    applies_to: AppliesTo = "prompt"

    def __init__(self, *, max_chars: int | None = None) -> None:
        self._filter = HTMLSanitizer(max_chars=max_chars)

    def __repr__(self) -> str:
        return f"InjectionCheck(max_chars={self._filter.max_chars!r})"

    def check(self, text: str, *, prompt: str | None = None) -> CheckResult:
        """Say whether the filter would change ``text``; ``prompt`` is not used."""
        result = self._filter.apply(text)
        if not result.changed:
            return CheckResult(check=self.name, flagged=False, score=0.0, details={})
        counts = Counter(kind for kind in result.removed if kind != "truncated")
        details = {"removed": dict(counts), "truncated": result.truncated}
        return CheckResult(check=self.name, flagged=True, score=1.0, details=details)
