"""Repetition and degeneration: the looping, copy-pasting output of a struggling model.

Two measures of one output, both in [0, 1], 0 = no repetition:

* **Repeated n-gram ratio** (``rep-n`` of Welleck et al., 2019, "Neural text generation
  with unlikelihood training"): ``1 - distinct n-grams / all n-grams`` over the
  case-folded word tokens. ``n = 3`` by default. "the cat sat the cat sat" has 4
  trigrams of which 3 are distinct: 0.25. This is the scorer's ``value``.
* **Longest repeated substring share**: the length of the longest substring that occurs
  at least twice (occurrences may overlap) divided by the text length, on characters
  with whitespace collapsed. An output that loops one sentence ten times scores 0.9;
  natural text scores low (a few words' worth). Reported in ``details["lrs_share"]``
  with the substring's length. Computed with a suffix automaton in linear time on the
  last ``lrs_max_chars`` characters (a loop runs to the end of the output).

Known limits: legitimate repetition scores too (lists with a repeated prefix such as
"- Step 1: ... - Step 2: ...", code, poems with refrains, tables); very short outputs
have few n-grams, so a single repeat moves the ratio a lot (``details["ngrams"]`` says
how many there were). Fewer than ``n`` words give 0.0 (nothing can repeat); an empty
output gives ``None``.
"""

from __future__ import annotations

from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str, words
from gemmawatch.evals.quality.base import Reference, ScoreResult

__all__ = ["Repetition", "longest_repeated_substring", "repeated_ngram_ratio"]


def repeated_ngram_ratio(tokens: list[str], n: int = 3) -> tuple[float, int]:
    """``(1 - distinct/total, total)`` over the ``n``-grams of ``tokens``; ``(0.0, 0)`` when there are none."""
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0, 0
    grams = tokens if n == 1 else zip(*(tokens[i:] for i in range(n)), strict=False)
    distinct = len(set(grams))
    return 1.0 - distinct / total, total


def longest_repeated_substring(text: str) -> tuple[int, int]:
    """``(length, end)`` of the longest substring of ``text`` occurring at least twice (overlaps allowed).

    ``text[end - length:end]`` is that substring (its last occurrence). Linear time: a
    suffix automaton whose suffix link, after each character, points at the longest
    suffix of the prefix read so far that also ended earlier.
    """
    link = [-1]
    length = [0]
    nxt: list[dict[str, int]] = [{}]
    last = 0
    best = best_end = 0
    for i, ch in enumerate(text):
        cur = len(length)
        length.append(length[last] + 1)
        link.append(-1)
        nxt.append({})
        p = last
        while p != -1 and ch not in nxt[p]:
            nxt[p][ch] = cur
            p = link[p]
        if p == -1:
            link[cur] = 0
        else:
            q = nxt[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                nxt.append(dict(nxt[q]))
                while p != -1 and nxt[p].get(ch) == q:
                    nxt[p][ch] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        last = cur
        repeated = length[link[cur]]
        if repeated > best:
            best, best_end = repeated, i + 1
    return best, best_end


class Repetition:
    """Repeated n-gram ratio (``value``) and longest repeated substring share (``details``); lower is better.

    Args:
        n: n-gram order for the ratio (3).
        lrs_max_chars: The longest-repeated-substring share reads at most this many
            characters from the end of the output (20,000; ~35 ms in CPython).
    """

    name = "repetition"
    version = "1"
    needs_reference = False
    higher_is_better = False

    def __init__(self, n: int = 3, lrs_max_chars: int = 20_000) -> None:
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"repetition n must be a positive integer, got {n!r}")
        if not isinstance(lrs_max_chars, int) or lrs_max_chars < 1:
            raise ConfigError(f"repetition lrs_max_chars must be a positive integer, got {lrs_max_chars!r}")
        self.n = n
        self.lrs_max_chars = lrs_max_chars
        self.args: dict[str, Any] = {"n": n, "lrs_max_chars": lrs_max_chars}

    def __repr__(self) -> str:
        return f"Repetition(n={self.n}, lrs_max_chars={self.lrs_max_chars})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """rep-n in [0, 1]; ``details``: ``ngrams``, ``lrs_share``, ``lrs_chars``."""
        require_str(prediction, "prediction")
        collapsed = " ".join(prediction.split())
        if not collapsed:
            return ScoreResult(None, {"reason": "empty output"})
        ratio, total = repeated_ngram_ratio(words(collapsed), self.n)
        tail = collapsed[-self.lrs_max_chars :]
        lrs, _ = longest_repeated_substring(tail)
        return ScoreResult(ratio, {"ngrams": total, "lrs_share": lrs / len(tail), "lrs_chars": lrs})
