"""Reference-based scorers: normalised exact match, token F1, ROUGE-L, BLEU and chrF.

Each compares a prediction with one or more reference answers; with several, the best
match counts (the maximum over references, as in SQuAD). No reference -> value
``None`` (see :mod:`gemmawatch.evals.quality.base`).

=============== ========= ==================================================================
scorer          scale     what
=============== ========= ==================================================================
``exact_match`` 0 / 1     normalised strings equal (SQuAD normalisation, Unicode-aware)
``token_f1``    0 .. 1    SQuAD token-overlap F1 after the same normalisation
``rouge_l``     0 .. 1    ROUGE-L F-measure (longest common subsequence), ``rouge-score``
``bleu``        0 .. 100  sentence-level BLEU, ``sacrebleu`` (``effective_order=True``)
``chrf``        0 .. 100  sentence-level chrF (character n-gram F-score), ``sacrebleu``
=============== ========= ==================================================================

Known limits:

* **Sentence-level BLEU/chrF are not corpus BLEU/chrF.** A corpus score pools n-gram
  counts over all segments before dividing; the mean of sentence scores is a different
  (and for BLEU, noisier and lower) number. Use sacrebleu's ``corpus_score`` to quote a
  corpus figure comparable with papers; these per-sample values are for paired
  comparisons and per-prompt diffs. Sentence BLEU on short answers is mostly 0 unless
  the answer shares 4-grams with the reference (``effective_order`` only drops n-gram
  orders longer than the sentence).
* **Tokenisation.** ``bleu`` uses sacrebleu's ``13a`` tokenizer by default, which does not
  segment Chinese or Japanese (use ``tokenize="zh"`` or ``"char"``); ``chrf`` works on
  characters and needs no tokenizer. ``rouge_l``'s default tokenizer is rouge-score's own,
  which keeps only ``[a-z0-9]`` runs: text in other scripts has *no* tokens. Such a
  reference gives value ``None`` with a reason instead of a silent 0; pass
  ``tokenizer="unicode"`` (case-folded ``\\w+`` runs, no stemming) to score it.
* **Normalisation** in ``exact_match``/``token_f1`` removes English articles only and
  treats every punctuation mark as noise ("3.5" becomes "35"; "C++" equals "C").
  Token F1 splits on whitespace, so unsegmented scripts (Chinese, Japanese, Thai)
  count a whole clause as one token.
* **Surface overlap is not correctness.** All five reward the reference's wording; a
  correct paraphrase scores low and a fluent wrong answer that reuses the question's
  words can score high. ``rouge_l`` is O(n*m) in prediction x reference tokens (pure
  Python): a 100k-character prediction against a one-line reference is fast, against a
  100k-character reference it is not.
"""

from __future__ import annotations

from collections import Counter
from importlib.metadata import version as dist_version
from typing import Any, Literal

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import normalize_answer, require_str, words
from gemmawatch.evals.quality.base import Reference, ScoreResult, references_of

__all__ = ["Bleu", "Chrf", "ExactMatch", "RougeL", "TokenF1", "exact_match", "token_f1"]

NO_REFERENCE = ScoreResult(None, {"reason": "no reference"})


def _refs(prediction: str, reference: Reference) -> list[str] | None:
    require_str(prediction, "prediction")
    return references_of(reference)


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0 (SQuAD's ``exact_match`` with Unicode folding)."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _f1_parts(pred_tokens: list[str], ref_tokens: list[str]) -> tuple[float, float, float]:
    # SQuAD v2's compute_f1: if either side is empty, F1 is 1 when both are, else 0.
    if not pred_tokens or not ref_tokens:
        same = float(pred_tokens == ref_tokens)
        return same, same, same
    common = Counter(pred_tokens) & Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between ``prediction`` and ``reference`` after normalisation."""
    return _f1_parts(normalize_answer(prediction).split(), normalize_answer(reference).split())[0]


class ExactMatch:
    """Normalised exact match: 1.0 when the prediction equals a reference after SQuAD normalisation.

    Normalisation: NFKC + case folding, punctuation and symbols deleted, English
    articles removed, whitespace collapsed ("The  Eiffel-Tower!" == "eiffeltower").
    """

    name = "exact_match"
    version = "1"
    needs_reference = True
    higher_is_better = True

    def __init__(self) -> None:
        self.args: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "ExactMatch()"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """1.0 / 0.0; ``details["reference_index"]`` names the matching reference when there are several."""
        refs = _refs(prediction, reference)
        if refs is None:
            return NO_REFERENCE
        pred = normalize_answer(prediction)
        for i, ref in enumerate(refs):
            if pred == normalize_answer(ref):
                return ScoreResult(1.0, {"reference_index": i} if len(refs) > 1 else {})
        return ScoreResult(0.0)


class TokenF1:
    """SQuAD token F1: the harmonic mean of token precision and recall after normalisation.

    Tokens are the whitespace-separated words of the normalised strings (see
    :class:`ExactMatch`), counted as a multiset. Best reference wins.
    """

    name = "token_f1"
    version = "1"
    needs_reference = True
    higher_is_better = True

    def __init__(self) -> None:
        self.args: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "TokenF1()"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """F1 in [0, 1] with ``details`` ``precision`` and ``recall`` of the best reference."""
        refs = _refs(prediction, reference)
        if refs is None:
            return NO_REFERENCE
        pred_tokens = normalize_answer(prediction).split()
        best = max(
            ((*_f1_parts(pred_tokens, normalize_answer(ref).split()), i) for i, ref in enumerate(refs)),
            key=lambda item: item[0],
        )
        details: dict[str, Any] = {"precision": best[1], "recall": best[2]}
        if len(refs) > 1:
            details["reference_index"] = best[3]
        return ScoreResult(best[0], details)


class _UnicodeTokenizer:
    """rouge-score tokenizer for any script: case-folded ``\\w+`` runs (no stemming)."""

    def tokenize(self, text: str) -> list[str]:
        return words(text)


class RougeL:
    """ROUGE-L F-measure from Google's ``rouge-score`` package (the longest common subsequence of tokens).

    Args:
        use_stemmer: Porter-stem English words longer than 3 letters (rouge-score's option;
            off by default, as in rouge-score).
        tokenizer: ``"default"`` (rouge-score's: lower case, ``[a-z0-9]`` runs only) or
            ``"unicode"`` (case-folded ``\\w+`` runs in any script; stemming is not applied).

    ``details``: ``precision`` and ``recall`` of the best reference. A reference with text
    but no tokens the tokenizer keeps (any non-Latin script with the default tokenizer)
    gives value ``None`` rather than a misleading 0.
    """

    name = "rouge_l"
    needs_reference = True
    higher_is_better = True

    def __init__(self, use_stemmer: bool = False, tokenizer: Literal["default", "unicode"] = "default") -> None:
        from rouge_score import rouge_scorer, tokenizers

        if tokenizer not in ("default", "unicode"):
            raise ConfigError(f"rouge_l tokenizer must be 'default' or 'unicode', got {tokenizer!r}")
        self.args: dict[str, Any] = {"use_stemmer": bool(use_stemmer), "tokenizer": tokenizer}
        self.version = f"1 (rouge-score {dist_version('rouge-score')})"
        self._tokenizer = (
            _UnicodeTokenizer() if tokenizer == "unicode" else tokenizers.DefaultTokenizer(use_stemmer=use_stemmer)
        )
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer, tokenizer=self._tokenizer)

    def __repr__(self) -> str:
        return f"RougeL(use_stemmer={self.args['use_stemmer']}, tokenizer={self.args['tokenizer']!r})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """F-measure in [0, 1]; see the class docstring."""
        refs = _refs(prediction, reference)
        if refs is None:
            return NO_REFERENCE
        if len(refs) == 1:
            result = self._scorer.score(refs[0], prediction)["rougeL"]
        else:
            result = self._scorer.score_multi(refs, prediction)["rougeL"]
        if result.fmeasure == 0.0:
            unreadable = [r for r in refs if r.strip() and not self._tokenizer.tokenize(r)]
            if len(unreadable) == len(refs):
                return ScoreResult(
                    None,
                    {
                        "reason": "the reference has no tokens the rouge-score tokenizer keeps "
                        "(it keeps [a-z0-9] only); use tokenizer='unicode'"
                    },
                )
        return ScoreResult(float(result.fmeasure), {"precision": result.precision, "recall": result.recall})


class _SacreBleuScorer:
    """Shared plumbing for the two sacrebleu metrics (sentence-level, best reference via sacrebleu)."""

    name: str
    needs_reference = True
    higher_is_better = True
    args: dict[str, Any]

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self.version = f"1 (sacrebleu {dist_version('sacrebleu')})"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{type(self).__name__}({args})"

    @property
    def signature(self) -> str:
        """sacrebleu's signature string for these settings (quote it next to any figure)."""
        return str(self._metric.get_signature())

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """sacrebleu's sentence score (0..100) against all references at once."""
        refs = _refs(prediction, reference)
        if refs is None:
            return NO_REFERENCE
        return ScoreResult(float(self._metric.sentence_score(prediction, refs).score))


class Bleu(_SacreBleuScorer):
    """Sentence-level BLEU (0..100) from ``sacrebleu`` with ``effective_order=True``.

    Args:
        tokenize: sacrebleu tokenizer (``13a`` default; ``zh``, ``char``, ``intl``, ``none``...).
        lowercase: Case-insensitive BLEU.
        smooth_method: ``exp`` (default), ``floor``, ``add-k`` or ``none``.

    Several references are scored as a multi-reference BLEU (sacrebleu pools their n-gram
    counts), not as the best single reference. Not comparable with corpus BLEU (module docstring).
    """

    name = "bleu"

    def __init__(self, tokenize: str = "13a", lowercase: bool = False, smooth_method: str = "exp") -> None:
        from sacrebleu.metrics import BLEU

        self.args = {"tokenize": tokenize, "lowercase": bool(lowercase), "smooth_method": smooth_method}
        try:
            metric = BLEU(effective_order=True, tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method)
        except (AssertionError, KeyError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"Invalid bleu arguments {self.args}: {exc}") from None
        super().__init__(metric)


class Chrf(_SacreBleuScorer):
    """Sentence-level chrF (0..100) from ``sacrebleu``: an F-score of character n-grams (chrF++ with ``word_order=2``).

    Args:
        char_order: Longest character n-gram (6).
        word_order: Word n-gram order (0 = chrF, 2 = chrF++).
        beta: Recall weight (2).
        lowercase: Case-insensitive.

    Works in any script (no tokenizer). Several references: the best one counts.
    """

    name = "chrf"

    def __init__(self, char_order: int = 6, word_order: int = 0, beta: int = 2, lowercase: bool = False) -> None:
        from sacrebleu.metrics import CHRF

        self.args = {"char_order": char_order, "word_order": word_order, "beta": beta, "lowercase": bool(lowercase)}
        try:
            metric = CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase)
        except (AssertionError, ValueError, TypeError) as exc:
            raise ConfigError(f"Invalid chrf arguments {self.args}: {exc}") from None
        super().__init__(metric)
