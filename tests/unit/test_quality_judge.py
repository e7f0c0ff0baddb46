"""LLM-as-judge: score parsing, versioned rubrics, the machinery with a scripted backend, and the bundled Gemma."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality import get_scorer, score_many
from gemmawatch.evals.quality.judge import JudgeScorer, list_rubrics, load_rubric, parse_score, strip_prompt_echo


@pytest.mark.parametrize(
    ("reply", "value", "how"),
    [
        ("Score: 4", 4.0, "labelled"),
        ("**Score:** 5 - accurate and complete.", 5.0, "labelled"),
        ("The rating is 2/5 because it is vague.", 2.0, "labelled"),
        ("score of 3 out of 5", 3.0, "labelled"),
        ("Grade: four", 4.0, "labelled"),
        ("Score: 4.5", 4.5, "labelled"),
        ("I would give it 4 out of 5.", 4.0, "fraction"),
        ("3/5", 3.0, "fraction"),
        ("4", 4.0, "leading"),
        ("**4** - good answer", 4.0, "leading"),
        ("2. It misses the point.", 2.0, "leading"),
        ("Score: 1 is the worst, Score: 5 the best.", None, "ambiguous"),  # an echoed rubric
        ("Score: 7", None, "unparseable"),  # out of range
        ("Score: 10", None, "unparseable"),
        ("10/5", None, "unparseable"),
        ("3 apples are on the table", None, "unparseable"),  # a leading number that is not a score
        ("The answer is fine.", None, "unparseable"),
        ("", None, "unparseable"),
        ("Ｓｃｏｒｅ： ５", None, "unparseable"),  # full-width: not read (judges reply in ASCII)
    ],
)
def test_parse_score(reply: str, value: float | None, how: str) -> None:
    assert parse_score(reply) == (value, how)


def test_bundled_rubrics_are_versioned() -> None:
    assert list_rubrics() == {"coherence": ["1"], "default": ["1"], "factuality": ["1"]}
    default = load_rubric()
    assert (default.name, default.version) == ("default", "1")
    assert default.sha256 == hashlib.sha256(default.template.encode()).hexdigest()
    assert load_rubric("default", 1) == load_rubric("default", "v1") == default
    assert load_rubric("factuality").needs_reference and not default.needs_reference
    with pytest.raises(ConfigError, match="Available: coherence, default, factuality"):
        load_rubric("nope")
    with pytest.raises(ConfigError, match="no version"):
        load_rubric("default", 9)


def test_rubric_file_and_render(tmp_path: Path) -> None:
    path = tmp_path / "strict.txt"
    path.write_text("Q: {{question}}\nA: {{answer}}\nScore 1-5.", encoding="utf-8")
    rubric = load_rubric(str(path))
    assert rubric.name == "strict" and rubric.version.startswith("sha-") and len(rubric.version) == 16
    assert load_rubric(str(path), version="2024-06").version == "2024-06"
    # one pass: braces and placeholders inside the answer are left alone
    assert rubric.render(question="q", answer="{{question}} {x}") == "Q: q\nA: {{question}} {x}\nScore 1-5."
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder", encoding="utf-8")
    with pytest.raises(ConfigError, match="placeholder"):
        load_rubric(str(bad))
    with pytest.raises(ConfigError, match="not found"):
        load_rubric(str(tmp_path / "missing.txt"))


def test_strip_prompt_echo() -> None:
    prompt = "You are grading an AI assistant's answer. Question: x. Answer: y. Reply 'Score: N'."
    assert strip_prompt_echo(prompt[:60] + " Score: 4", prompt) == (" Score: 4", True)
    assert strip_prompt_echo("You are great. Score: 4", prompt) == ("You are great. Score: 4", False)
    assert strip_prompt_echo("Score: 4", prompt) == ("Score: 4", False)


class ScriptedBackend:
    """A backend that answers with canned replies and records what it was asked."""

    def __init__(self, replies: Sequence[str], error: str | None = None) -> None:
        self.info = TargetInfo(name="scripted", backend="fake", model_id="fake/judge", revision="r1")
        self.replies = list(replies)
        self.error = error
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        out = []
        for request in requests:
            self.requests.append(request)
            text = "" if self.error else self.replies.pop(0)
            out.append(
                GenerationResult(
                    text=text,
                    input_tokens=1,
                    output_tokens=1,
                    token_source="tokenizer",
                    started_at=datetime.now(UTC),
                    error=self.error,
                )
            )
        return out

    def close(self) -> None:
        raise AssertionError("the judge must not close a backend it was given")


def test_judge_machinery_with_a_scripted_backend() -> None:
    backend = ScriptedBackend(["Score: 4 - mostly right.", "I cannot tell."])
    judge = get_scorer("judge", target=backend)
    results = score_many(judge, ["Paris.", "Bananas."], prompts=["Capital of France?", "Capital of France?"])
    first, second = results
    assert first.value == 4.0 and first.details["parse"] == "labelled"
    assert first.details["judge"] == {
        "target": "scripted",
        "backend": "fake",
        "model_id": "fake/judge",
        "revision": "r1",
        "quantization": None,
    }
    assert first.details["rubric"] == "default" and first.details["rubric_version"] == "1"
    assert first.details["rubric_sha256"] == load_rubric("default").sha256
    sent = backend.requests[0]
    assert sent.chat and sent.temperature == 0.0 and sent.max_new_tokens == 48
    assert isinstance(sent.prompt, str) and "Capital of France?" in sent.prompt and "Paris." in sent.prompt
    assert first.details["prompt_sha256"] == hashlib.sha256(sent.prompt.encode()).hexdigest()
    assert second.value is None and second.details["reply"] == "I cannot tell."
    assert second.details["reason"] == "no score in the judge's reply"
    assert judge.args["target"] == "scripted" and judge.version == "1 (rubric default.v1)"
    judge.close()  # type: ignore[attr-defined]  # must not close the borrowed backend


def test_judge_reference_rubric_and_missing_inputs() -> None:
    backend = ScriptedBackend(["Score: 5"])
    judge = JudgeScorer(backend, rubric="factuality")  # type: ignore[arg-type]
    assert judge.needs_reference
    assert judge.score("Paris", None, prompt="Capital?").details["reason"] == "no reference"
    assert judge.score("Paris", "Paris", prompt=None).details["reason"] == "no prompt"
    assert backend.requests == []  # nothing scorable was sent
    assert judge.score("Paris", ["Paris", "City of Paris"], prompt="Capital?").value == 5.0
    assert "- Paris\n- City of Paris" in str(backend.requests[0].prompt)


def test_judge_echo_failure_and_long_answers() -> None:
    rubric = load_rubric("default")
    echo = rubric.render(question="Q?", answer="A.")[:120]
    backend = ScriptedBackend([echo, echo + "\nScore: 2"])
    judge = JudgeScorer(backend)  # type: ignore[arg-type]
    only_echo = judge.score("A.", prompt="Q?")
    assert only_echo.value is None and only_echo.details["echo"] is True
    assert judge.score("A.", prompt="Q?").value == 2.0  # the verdict after the echo counts
    failing = JudgeScorer(ScriptedBackend([], error="out of memory"), max_answer_chars=10)  # type: ignore[arg-type]
    result = failing.score("x" * 100 + "🙂", prompt="Q?")
    assert result.value is None and result.details["error"] == "out of memory"
    assert result.details["answer_truncated"] is True


def test_judge_argument_validation() -> None:
    with pytest.raises(ConfigError):
        get_scorer("judge", target=ScriptedBackend([]), max_new_tokens=0)
    with pytest.raises(ConfigError):
        get_scorer("judge", target=ScriptedBackend([]), rubric="nope")


@pytest.mark.model
def test_judge_with_the_bundled_gemma_via_llamacpp() -> None:
    # A 270M base model is a poor judge: the reply may hold no score. The machinery is what is checked.
    judge: Any = get_scorer("judge", target="llamacpp:bundled:gemma-3-270m", max_new_tokens=24)
    try:
        results = score_many(
            judge,
            ["Paris is the capital of France.", "Bananas."],
            prompts=["What is the capital of France?", "What is the capital of France?"],
        )
    finally:
        judge.close()
    for result in results:
        details = result.details
        assert details["judge"]["backend"] == "llamacpp" and details["judge"]["model_id"] == "bundled:gemma-3-270m"
        assert details["judge"]["quantization"] == "Q4_K_M" and details["judge"]["revision"]
        assert details["rubric_version"] == "1" and len(details["prompt_sha256"]) == 64
        assert isinstance(details["reply"], str)
        if result.value is None:
            assert details["reason"] in ("no score in the judge's reply", "the judge only echoed the prompt")
        else:
            assert 1.0 <= result.value <= 5.0
