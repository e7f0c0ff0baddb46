"""Load-test prompts: built-in lengths, JSONL datasets and their errors, seeded order."""

from __future__ import annotations

import json

import pytest

from gemmawatch.collectors.load.prompts import (
    VOCABULARY,
    builtin_prompts,
    dataset_prompts,
    resolve_prompts,
    schedule,
)
from gemmawatch.errors import ConfigError


def test_builtin_prompts_have_the_asked_length_and_differ():
    prompts = builtin_prompts(50, input_tokens=32, output_tokens=16, seed=3)
    assert len(prompts) == 50
    assert all(len(p.text.split()) == 32 and p.max_tokens == 16 and p.input_tokens == 32 for p in prompts)
    assert len({p.text for p in prompts}) == 50
    assert len({p.text.split()[0:4].__str__() for p in prompts}) > 40  # different starts: no shared prefix cache
    assert builtin_prompts(5, input_tokens=32, output_tokens=16, seed=3) == prompts[:5]  # seeded
    assert all(w in VOCABULARY for p in prompts for w in p.text.split())


def test_builtin_lengths_must_be_positive():
    with pytest.raises(ConfigError, match="--input-tokens and --output-tokens must be >= 1"):
        builtin_prompts(1, input_tokens=0, output_tokens=4, seed=0)


def test_jsonl_dataset(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"question": "What is 2+2?", "n": 5}) + "\n\n" + json.dumps({"question": "Name a colour."}) + "\n"
    )
    prompts = dataset_prompts(path, prompt_field="question", output_tokens=32, output_tokens_field="n")
    assert [(p.text, p.max_tokens) for p in prompts] == [("What is 2+2?", 5), ("Name a colour.", 32)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "a"}\n{not json}\n', "line 2 is not valid JSON"),
        ('{"text": "a"}\n', "line 1 has no text field 'prompt'. Fix: pass --prompt-field"),
        ('{"prompt": ""}\n', "line 1 has no text field 'prompt'"),
        ('["prompt"]\n', "line 1 has no text field"),
        ("\n\n", "has no prompts"),
        ('{"prompt": "a", "n": -3}\n', "'n' must be a positive integer"),
    ],
)
def test_bad_datasets_name_the_line_and_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        dataset_prompts(path, output_tokens=8, output_tokens_field="n")


def test_missing_dataset(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_prompts(
            str(tmp_path / "nope.jsonl"), count=1, input_tokens=1, output_tokens=1, prompt_field="prompt",
            output_tokens_field=None, seed=0,
        )  # fmt: skip


def test_suite_prompts_and_unknown_suite():
    prompts = resolve_prompts(
        "suite:smoke",
        count=1,
        input_tokens=1,
        output_tokens=24,
        prompt_field="prompt",
        output_tokens_field=None,
        seed=0,
    )
    assert len(prompts) > 10 and all(p.max_tokens == 24 for p in prompts)
    with pytest.raises(ConfigError, match="Unknown suite 'mmlu'. Available: smoke"):
        resolve_prompts(
            "suite:mmlu", count=1, input_tokens=1, output_tokens=1, prompt_field="prompt", output_tokens_field=None,
            seed=0,
        )  # fmt: skip


def test_schedule_is_a_seeded_permutation():
    pool = builtin_prompts(20, input_tokens=4, output_tokens=4, seed=0)
    a, b, c = schedule(pool, 1), schedule(pool, 1), schedule(pool, 2)
    assert a == b and a != c and sorted(p.text for p in a) == sorted(p.text for p in pool)
