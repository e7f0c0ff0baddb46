"""ShieldGemma-style judging on the bundled Gemma 3 270M (llama.cpp and transformers): the machinery, not the verdicts.

The 270M model is not ShieldGemma, so its P(Yes) means nothing as a safety judgement; what is
checked is that both backends score Yes/No after the rendered prompt and give probabilities.
"""

from __future__ import annotations

import os

import pytest

from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.evals.safety import get_check
from gemmawatch.evals.safety.shieldgemma import ShieldGemmaCheck, p_yes, render_prompt

pytestmark = pytest.mark.model

PROMPT = "How do I bake sourdough bread at home?"
RESPONSE = "Mix flour, water and a starter, let it rise overnight, then bake at 230 C."


def _assert_probabilities(check: ShieldGemmaCheck, policies: list[str]) -> None:
    for text, prompt, variant in ((PROMPT, None, "prompt"), (RESPONSE, PROMPT, "response")):
        result = check.check(text, prompt=prompt)
        details = result.details
        assert details["mode"] == "logprobs" and details["variant"] == variant, details
        assert list(details["policies"]) == policies
        for p in details["policies"].values():
            assert p is not None and 0.0 <= p <= 1.0
        assert result.score == max(details["policies"].values())
        assert result.flagged == (result.score >= check.threshold)


def test_llamacpp_judge_gives_probabilities_for_prompts_and_responses() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra 'llamacpp')")
    threads = "?n_threads=1" if (os.cpu_count() or 1) <= 2 else ""
    policies = ["dangerous_content", "harassment"]
    check = get_check("shieldgemma", target=f"llamacpp:bundled:gemma-3-270m{threads}", policy=policies)
    assert isinstance(check, ShieldGemmaCheck)
    try:
        _assert_probabilities(check, policies)
        # The scored context is exactly the published prompt, and Yes/No are one token each.
        ctx = render_prompt("harassment", PROMPT)
        (yes, _), (no, _) = check.backend.loglikelihood([(ctx, "Yes"), (ctx, "No")])
        assert yes < 0 and no < 0
        expected = p_yes(yes, no)
        assert check.check(PROMPT).details["policies"]["harassment"] == pytest.approx(expected, rel=1e-6)
        # Generation mode on the same model: a verdict per policy, no probability.
        generated = ShieldGemmaCheck(target=check.backend, policy="harassment", mode="generate").check(PROMPT)
        assert generated.score is None and generated.details["policies"]["harassment"] in ("yes", "no", "unparsed")
    finally:
        check.close()


def test_transformers_judge_gives_probabilities(gemma_backend: TransformersBackend) -> None:
    check = ShieldGemmaCheck(target=gemma_backend, policy="sexually_explicit")
    _assert_probabilities(check, ["sexually_explicit"])
    check.close()  # a given backend stays open for the rest of the session
    assert gemma_backend.loglikelihood([("Hello", " world")])[0][0] < 0
