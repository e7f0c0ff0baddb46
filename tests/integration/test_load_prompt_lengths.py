"""The built-in load prompts have the length they claim, in Gemma's own tokenizer."""

from __future__ import annotations

import pytest

from gemmawatch.collectors.load.prompts import VOCABULARY, builtin_prompts

pytestmark = pytest.mark.model


def test_every_vocabulary_word_is_one_gemma_token_and_prompts_have_exact_lengths():
    from gemmawatch.collectors.backends.openai_options import load_tokenizer

    tok = load_tokenizer("bundled")
    multi = [w for w in VOCABULARY if len(tok(" " + w, add_special_tokens=False)["input_ids"]) != 1]
    assert multi == []
    for p in builtin_prompts(20, input_tokens=37, output_tokens=8, seed=1):
        # No BOS here: the server adds exactly one, so the request is input_tokens + 1 tokens.
        assert len(tok(p.text, add_special_tokens=False)["input_ids"]) == 37
