"""The quality-scorer registry, the Scorer contract every built-in keeps, batch scoring and metric rows."""

from __future__ import annotations

import json
import math

import pytest

from gemmawatch.errors import ConfigError, MissingDependencyError, UnknownNameError
from gemmawatch.evals.quality import QUALITY_SCORERS, Scorer, ScoreResult, get_scorer, metric_row, score_many
from gemmawatch.evals.quality.base import references_of

# The judge needs a target; it is covered in test_quality_judge.py.
BUILTINS = [name for name in QUALITY_SCORERS.names() if name != "judge"]
ADVERSARIAL = ["", " ", "🙂" * 50, "\u200b\u200d\ufeff", "Ｆｕｌｌ－ｗｉｄｔｈ ｔｅｘｔ", "مرحبا", "a\x00b", "x" * 5000]


def test_registry_lists_the_builtins() -> None:
    assert QUALITY_SCORERS.names() == [
        "bleu",
        "chrf",
        "coherence",
        "exact_match",
        "factual_accuracy",
        "function_call",
        "judge",
        "language_match",
        "length",
        "numeric_match",
        "relevance",
        "repetition",
        "rouge_l",
        "safety",
        "semantic_relevance",
        "token_f1",
        "truncated",
    ]
    assert all(QUALITY_SCORERS.describe(name) for name in QUALITY_SCORERS)


def test_get_scorer_errors() -> None:
    with pytest.raises(UnknownNameError, match="Available: bleu, chrf"):
        get_scorer("bertscore")
    with pytest.raises(ConfigError, match="Accepted: use_stemmer, tokenizer"):
        get_scorer("rouge_l", stemmer=True)


def test_missing_dependency_becomes_an_install_hint() -> None:
    def needs_missing_package() -> Scorer:
        import gemmawatch_no_such_package  # type: ignore[import-not-found]  # noqa: F401

        raise AssertionError("unreachable")

    QUALITY_SCORERS.register("needs_missing", needs_missing_package)
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install 'gemmawatch\[quality\]'"):
            get_scorer("needs_missing")
    finally:
        QUALITY_SCORERS._entries.pop("needs_missing")
        QUALITY_SCORERS._loaded.pop("needs_missing")


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_keeps_the_scorer_contract(name: str) -> None:
    scorer = get_scorer(name)
    assert isinstance(scorer, Scorer)
    assert scorer.name == name and scorer.version
    assert scorer.higher_is_better in (True, False, None)
    json.dumps(scorer.args)
    assert get_scorer(name, **scorer.args).args == scorer.args  # args rebuild the scorer
    prompt = "Please explain what photosynthesis is, in a few sentences."
    reference = "Photosynthesis turns light into chemical energy."
    for text in ADVERSARIAL:
        result = scorer.score(text, reference, prompt=prompt)
        assert isinstance(result, ScoreResult)
        assert result.value is None or math.isfinite(result.value)
        json.dumps(result.details)
    if scorer.needs_reference:
        assert scorer.score("x", None, prompt=prompt) == ScoreResult(None, {"reason": "no reference"})
    with pytest.raises(TypeError):
        scorer.score(42, reference, prompt=prompt)  # type: ignore[arg-type]


def test_score_many_falls_back_to_score_and_checks_lengths() -> None:
    scorer = get_scorer("token_f1")
    results = score_many(scorer, ["a b", "c"], ["a b", None])
    assert [r.value for r in results] == [1.0, None]
    with pytest.raises(ValueError, match="references has 1 items for 2 predictions"):
        score_many(scorer, ["a", "b"], ["a"])
    truncated = score_many(
        get_scorer("truncated"), ["x", "y"], contexts=[{"output_tokens": 8, "max_new_tokens": 8}, {}]
    )
    assert [r.value for r in truncated] == [1.0, None]


def test_references_of() -> None:
    assert references_of(None) is None and references_of([]) is None and references_of(()) is None
    assert references_of("a") == ["a"] and references_of(("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError):
        references_of(3)  # type: ignore[arg-type]


def test_metric_row() -> None:
    scorer = get_scorer("exact_match")
    results = [ScoreResult(1.0), ScoreResult(0.0), ScoreResult(1.0), ScoreResult(None, {"reason": "no reference"})]
    row = metric_row("triviaqa", scorer, results)
    assert row is not None
    assert row["task"] == "triviaqa" and row["metric"] == "exact_match" and row["filter"] == "none"
    assert row["value"] == pytest.approx(2 / 3) and row["n"] == 3
    assert 0.0 <= row["ci_low"] < row["value"] < row["ci_high"] <= 1.0  # Wilson for 0/1 values
    assert row["higher_is_better"] is True
    assert (row["producer"], row["producer_version"]) == ("exact_match", "1")
    assert row["details"] == {"args": {}, "version": "1", "unscored": 1, "reasons": {"no reference": 1}}
    continuous = metric_row("t", get_scorer("rouge_l"), [ScoreResult(v) for v in (0.2, 0.4, 0.9)], metric="rougeL")
    assert continuous is not None and continuous["metric"] == "rougeL" and continuous["n"] == 3
    assert continuous["ci_low"] <= 0.5 <= continuous["ci_high"]
    assert metric_row("t", scorer, [ScoreResult(None)]) is None
    assert metric_row("t", scorer, []) is None
