"""How prompts and outputs are written to the database: in clear, redacted, or as hashes.

The config key ``store_text`` (``clear`` | ``redacted`` | ``hash``, default ``clear``)
selects a :class:`TextPolicy`; whoever stores samples passes it to
:func:`gemmawatch.storage.queries.samples.add_samples` (``text_policy=``), which applies
it to each sample's ``prompt`` and ``output`` (the reference answer in ``target`` and the
scores are kept as they are).

=============  ===========================================================================
mode           what is stored
=============  ===========================================================================
``clear``      the text as it is
``redacted``   the text with every piece of personal data found by the ``pii`` check
               replaced by its masked form: ``mail jane.doe@example.com`` ->
               ``mail j***@e***.com``, a card -> ``****-****-****-1111``
``hash``       ``sha256:<64 hex digits>`` of the UTF-8 text; with a salt (the environment
               variable ``GEMMAWATCH_TEXT_SALT``, or ``salt=``) ``hmac-sha256:<hex>``,
               the HMAC-SHA256 of the text keyed by the salt
=============  ===========================================================================

An empty text stays empty in every mode (it marks a failed generation and holds nothing).

Every mode is deterministic, so runs stored with the same mode (and salt) still pair
their samples by prompt for ``gemmawatch compare``; mixing modes between the two runs
of a comparison leaves their prompts unequal. Hashes make the sample browser's text
search and the prompt/output columns meaningless, by design. An unsalted hash of a
short or guessable prompt can be reversed by trying candidates; set a secret salt when
that matters (keep it: a different salt gives different hashes). Redaction is only as
good as the ``pii`` recognizers (names and postal addresses are not detected).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, Literal, get_args

from gemmawatch.errors import ConfigError
from gemmawatch.evals.safety._text import require_str
from gemmawatch.evals.safety.pii import find_pii

__all__ = ["SALT_ENV", "STORE_TEXT_MODES", "StoreText", "TextPolicy", "redact"]

#: The values of the ``store_text`` config key.
StoreText = Literal["clear", "redacted", "hash"]
STORE_TEXT_MODES: tuple[str, ...] = get_args(StoreText)
#: Environment variable holding the optional salt of ``hash`` mode.
SALT_ENV = "GEMMAWATCH_TEXT_SALT"


def redact(text: str) -> str:
    """``text`` with each ``pii`` match replaced by its masked form (linear time)."""
    text = require_str(text)
    pieces: list[str] = []
    pos = 0
    for match in find_pii(text):
        pieces.append(text[pos : match.start])
        pieces.append(match.masked)
        pos = match.end
    pieces.append(text[pos:])
    return "".join(pieces)


class TextPolicy:
    """Turns a prompt or output into what is stored; see the module docstring.

    Args:
        mode: ``clear``, ``redacted`` or ``hash``.
        salt: Salt for ``hash`` mode; default: the ``GEMMAWATCH_TEXT_SALT`` environment
            variable, read once here (unset or empty: no salt).
        environ: Where to read the salt from (tests pass a dict).

    Raises:
        ConfigError: ``mode`` is not one of the three.
    """

    __slots__ = ("_salt", "mode")

    def __init__(
        self, mode: str = "clear", *, salt: str | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        if mode not in STORE_TEXT_MODES:
            raise ConfigError(f"store_text must be one of {', '.join(STORE_TEXT_MODES)}, got {mode!r}")
        self.mode: StoreText = mode  # type: ignore[assignment]  # checked just above
        if salt is None:
            salt = (os.environ if environ is None else environ).get(SALT_ENV) or None
        self._salt = salt.encode("utf-8") if salt else None

    def __repr__(self) -> str:  # never shows the salt
        return f"TextPolicy(mode={self.mode!r}, salted={self.salted})"

    @property
    def salted(self) -> bool:
        """Whether ``hash`` mode uses a salt."""
        return self._salt is not None

    def describe(self) -> dict[str, Any]:
        """What to record with a run (the mode, and for hashes whether they are salted; never the salt)."""
        return {"store_text": self.mode, **({"salted": self.salted} if self.mode == "hash" else {})}

    def apply(self, text: str) -> str:
        """What to store for ``text``."""
        text = require_str(text)
        if not text or self.mode == "clear":
            return text
        if self.mode == "redacted":
            return redact(text)
        data = text.encode("utf-8", errors="surrogatepass")
        if self._salt is None:
            return "sha256:" + hashlib.sha256(data).hexdigest()
        return "hmac-sha256:" + hmac.new(self._salt, data, hashlib.sha256).hexdigest()
