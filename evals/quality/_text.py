"""Text normalisation shared by the quality scorers (private).

:func:`normalize_answer` is SQuAD's answer normalisation made Unicode-aware. On ASCII
text it gives exactly what the official SQuAD script gives (lower case, ASCII
punctuation deleted, the articles a/an/the removed, whitespace collapsed). Beyond
ASCII it also NFKC-folds and case-folds (``ＰＡＲＩＳ`` -> ``paris``, ``Straße`` ->
``strasse``) and deletes every Unicode punctuation or symbol character and invisible
format characters (zero-width space, soft hyphen). Articles are English only.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

__all__ = ["fold", "normalize_answer", "require_str", "sentences", "words"]

_ASCII_DELETE = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
# Sentence ends: ./!/? followed by whitespace, the CJK full stops 。！？ (no space follows them), any line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])\s*|\s*\n\s*")
_WORD = re.compile(r"\w+")


def require_str(value: object, what: str) -> str:
    """Return ``value`` if it is a ``str``; raise ``TypeError`` naming ``what`` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    return value


def fold(text: str) -> str:
    """NFKC-fold and case-fold ``text`` (ASCII text is only lower-cased, the common fast path)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=8192)
def _deleted(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "PS" or category == "Cf"


def _delete_punctuation(text: str) -> str:
    if text.isascii():
        return text.translate(_ASCII_DELETE)
    # Look each distinct character up once: linear in the text, not in the alphabet.
    table = {ord(ch): None for ch in set(text) if _deleted(ch)}
    return text.translate(table)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (Unicode-aware, see the module docstring)."""
    text = _delete_punctuation(fold(text))
    return " ".join(_ARTICLES.sub(" ", text).split())


def words(text: str) -> list[str]:
    """The word tokens of ``text`` after folding (``\\w+`` runs: letters, digits, underscore)."""
    return _WORD.findall(fold(text))


def sentences(text: str) -> list[str]:
    """``text`` split into sentences at ``. ! ?`` before whitespace, after CJK ``。！？``, and at line breaks."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]
