"""Unicode folding shared by the safety checks (private).

Folding maps text to a canonical form before patterns run: NFKC (full-width
``４``/``＠`` -> ``4``/``@``, no-break space -> space, ``ﬁ`` -> ``fi``), invisible
format characters (Unicode category Cf: zero-width space/joiners, soft hyphen,
bidi marks) dropped, typographic dashes -> ``-`` and apostrophes -> ``'``.
Pure-ASCII text is returned as is (the common case costs one ``isascii`` scan).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["FoldedText", "fold", "fold_with_offsets", "require_str"]

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_APOSTROPHES = "\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\u2032\uff07"
_TRANSLATE = str.maketrans({**dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_APOSTROPHES, "'")})
_NON_ASCII_OR_RUN = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]")


def require_str(text: object, what: str = "text") -> str:
    """Return ``text`` if it is a ``str``; raise ``TypeError`` naming ``what`` otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    return text


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    return unicodedata.normalize("NFKC", ch.translate(_TRANSLATE)).translate(_TRANSLATE)


def fold(text: str) -> str:
    """The folded form of ``text`` (no offset bookkeeping)."""
    if text.isascii():
        return text
    chunks = (m.group() for m in _NON_ASCII_OR_RUN.finditer(text))
    return "".join(chunk if chunk.isascii() else _fold_char(chunk) for chunk in chunks)


class FoldedText:
    """Folded text plus the way back: ``span(start, end)`` in the folded string -> the original."""

    __slots__ = ("_index", "original", "text")

    def __init__(self, original: str, text: str, index: list[int] | None) -> None:
        self.original = original
        self.text = text
        self._index = index

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded ``[start, end)`` span onto the original text."""
        if self._index is None:
            return start, end
        if end <= start:
            pos = self._index[start]
            return pos, pos
        return self._index[start], self._index[end - 1] + 1


def fold_with_offsets(text: str) -> FoldedText:
    """Fold ``text`` and remember where each folded character came from (linear time)."""
    if text.isascii():
        return FoldedText(text, text, None)
    pieces: list[str] = []
    index: list[int] = []
    for m in _NON_ASCII_OR_RUN.finditer(text):
        chunk = m.group()
        if chunk.isascii():
            pieces.append(chunk)
            index.extend(range(m.start(), m.end()))
        else:
            folded = _fold_char(chunk)
            pieces.append(folded)
            index.extend([m.start()] * len(folded))
    index.append(len(text))  # so an empty span at the very end maps too
    return FoldedText(text, "".join(pieces), index)
