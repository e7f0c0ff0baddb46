"""The quality-scorer interface: one ``score(prediction, reference, prompt=...)`` call in, one :class:`ScoreResult` out.

A scorer is any object with ``name``, ``version``, ``args``, ``needs_reference``,
``higher_is_better`` and a ``score`` method (:class:`Scorer` is a Protocol, not a
base class). ``name``, ``version`` and ``args`` are recorded with every stored
score, so two runs' figures are only compared when they were computed the same way.

Contract every built-in scorer keeps (and its tests pin down):

* **Value.** ``ScoreResult.value`` is a float, or ``None`` when the scorer could not
  score this sample (no reference, undecidable language, unparseable judge reply...).
  ``details["reason"]`` then says why. Aggregates skip ``None`` and report how many
  samples were actually scored. ``higher_is_better`` gives the direction (``None``:
  no direction, e.g. ``length``).
* **References.** ``reference`` is one string, a sequence of acceptable strings (the
  best match counts, as in SQuAD), or ``None``. A reference-based scorer
  (``needs_reference`` true) given ``None`` or an empty sequence returns value ``None``
  with ``details["reason"] == "no reference"``; it never guesses. An empty *string*
  is a real reference.
* **Empty prediction.** Reference-based scorers score it like any other answer (a
  wrong one, usually 0; normalised exact match and token F1 give 1 when the reference
  also normalises to nothing, as SQuAD's v2 script does). Reference-free scorers
  return ``None`` where the property is undefined for no text (relevance, coherence,
  language, repetition) and a real value where it is defined (length 0, safety 1).
* **Unicode.** Scorers that normalise text use NFKC folding and Unicode case folding
  (full-width letters, ligatures, ``ß``); punctuation is any Unicode punctuation or
  symbol. Library-backed scorers keep their library's tokenisation, whose limits are
  documented on the scorer (rouge-score's default tokenizer keeps only ``[a-z0-9]``).
* **Very long output** (100k characters) is scored in well under a second by the
  text scorers: they are linear or near-linear in the text length; the exceptions
  (ROUGE-L is O(n·m) in prediction × reference tokens; the embedding model reads only
  its first ``max_seq_length`` tokens; language detection reads the first 2,000
  characters) say so in their docstrings.
* **Never raises on strings**: any ``str`` prediction gives a result; a non-string
  prediction or reference raises ``TypeError``.
* ``details`` is JSON-serialisable.

Batch path: a scorer may also define ``score_many(predictions, references=None, *,
prompts=None, contexts=None) -> list[ScoreResult]`` (the embedding scorers encode
whole batches at once). Call :func:`score_many` to use it when present and fall back
to one ``score`` call per sample when not.

Per-sample context: ``score(..., **context)`` takes extra facts about the generation
that some scorers need, by these names: ``output_tokens`` (int, tokens the model
generated), ``max_new_tokens`` (int, the generation limit), ``expected_language``
(ISO 639-1 code). Scorers ignore context keys they do not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Reference", "ScoreResult", "Scorer", "ScorerFactory", "references_of", "score_many"]

#: A reference answer: one string, several acceptable strings, or none.
Reference = str | Sequence[str] | None


@dataclass(frozen=True)
class ScoreResult:
    """One scorer's verdict on one prediction.

    Attributes:
        value: The score (scale and direction documented per scorer), or ``None`` when
            the sample could not be scored (``details["reason"]`` says why).
        details: JSON-serialisable evidence: components of the score, counts, the
            judge's raw reply... never needed to interpret ``value``.
    """

    value: float | None
    details: dict[str, Any] = field(default_factory=dict, hash=False)


@runtime_checkable
class Scorer(Protocol):
    """A quality scorer.

    Attributes:
        name: Registry name; also the key of the score in a sample's ``scores``.
        version: Bumped whenever values may change for the same inputs (includes the
            wrapped library's version where there is one).
        args: The construction arguments with defaults filled in (JSON-serialisable),
            enough to rebuild the scorer with ``get_scorer(name, **args)``.
        needs_reference: Whether the scorer compares against a reference answer.
        higher_is_better: The direction of ``value`` for regression gates; ``None`` when
            there is none (``length``).
    """

    name: str
    version: str
    args: dict[str, Any]
    needs_reference: bool
    higher_is_better: bool | None

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """Score ``prediction`` (against ``reference`` when the scorer needs one)."""
        ...


#: What the registry holds: a class or function building a scorer from keyword arguments.
ScorerFactory = Callable[..., Scorer]


def references_of(reference: Reference) -> list[str] | None:
    """``reference`` as a list of strings; ``None`` when there is none (``None`` or an empty sequence).

    Raises:
        TypeError: ``reference`` is neither ``None``, a ``str`` nor a sequence of ``str``.
    """
    if reference is None:
        return None
    if isinstance(reference, str):
        return [reference]
    if not isinstance(reference, Sequence):
        raise TypeError(f"reference must be a str, a sequence of str or None, got {type(reference).__name__}")
    refs = list(reference)
    for ref in refs:
        if not isinstance(ref, str):
            raise TypeError(f"each reference must be a str, got {type(ref).__name__}")
    return refs or None


def score_many(
    scorer: Scorer,
    predictions: Sequence[str],
    references: Sequence[Reference] | None = None,
    *,
    prompts: Sequence[str | None] | None = None,
    contexts: Sequence[Mapping[str, Any]] | None = None,
) -> list[ScoreResult]:
    """Score a batch with ``scorer``: its own ``score_many`` when it has one, else one ``score`` call each.

    ``references``, ``prompts`` and ``contexts`` are aligned with ``predictions`` (``None``
    means none for every sample).

    Raises:
        ValueError: An aligned sequence has a different length from ``predictions``.
    """
    n = len(predictions)
    for what, seq in (("references", references), ("prompts", prompts), ("contexts", contexts)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{what} has {len(seq)} items for {n} predictions")
    batch = getattr(scorer, "score_many", None)
    if callable(batch):
        results: list[ScoreResult] = batch(predictions, references, prompts=prompts, contexts=contexts)
        return results
    return [
        scorer.score(
            predictions[i],
            references[i] if references is not None else None,
            prompt=prompts[i] if prompts is not None else None,
            **(contexts[i] if contexts is not None else {}),
        )
        for i in range(n)
    ]
