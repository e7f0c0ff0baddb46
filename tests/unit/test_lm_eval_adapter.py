"""BackendLM (gemmawatch's generic lm-eval adapter) on a hand-written deterministic Backend.

The test double implements the Backend protocol without a model, so these tests check
the adapter's request plumbing only; the real-model path is tested per backend.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lm_eval.api.instance import Instance

from gemmawatch.collectors.backends.base import Backend, GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.errors import BackendError, UnknownNameError
from gemmawatch.evals.lm_eval_adapter import DEFAULT_MAX_GEN_TOKS, BackendLM, generation_request
from gemmawatch.evals.runner import run_lm_eval
from gemmawatch.evals.suites import suite_dir


class RecordingBackend:
    """Deterministic Backend: scores ``-len(continuation)``, answers ``answer`` (cut at stop strings)."""

    def __init__(self, answer: str = " cold\nQuestion: next", fail: set[int] | None = None) -> None:
        self.info = TargetInfo(name="fake", backend="fake", model_id="fake-model", revision="r1", dtype="none")
        self.answer = answer
        self.fail = fail or set()
        self.scored: list[tuple[str, str]] = []
        self.generated: list[GenerationRequest] = []
        self.batch_sizes: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        self.batch_sizes.append(batch_size)
        out = []
        for request in requests:
            index = len(self.generated)
            self.generated.append(request)
            text = self.answer
            for stop in request.stop:
                text = text.split(stop)[0]
            failed = index in self.fail
            out.append(
                GenerationResult(
                    text="" if failed else text,
                    input_tokens=1,
                    output_tokens=0 if failed else 2,
                    token_source="tokenizer",
                    started_at=datetime.now(UTC),
                    error="read timed out" if failed else None,
                    error_class="timeout" if failed else None,
                )
            )
        return out

    def stream(self, request: GenerationRequest) -> GenerationResult:
        return self.generate([request])[0]

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        self.scored.extend(requests)
        return [(-float(len(cont)), cont.strip() == "Paris") for _, cont in requests]

    def lm_eval_model(self, *, batch_size: int = 8) -> BackendLM:
        return BackendLM(self, batch_size)

    def memory_bytes(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class TokenizingBackend(RecordingBackend):
    def tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]


class NoScoringBackend(RecordingBackend):
    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        raise NotImplementedError("the server returns no prompt logprobs")


def _req(kind: str, args: tuple[Any, ...], doc_id: int = 0) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0, metadata=("task_x", doc_id, 1))  # type: ignore[arg-type]


def test_fake_is_a_backend() -> None:
    assert isinstance(RecordingBackend(), Backend)


def test_loglikelihood_passes_pairs_in_order_and_keeps_the_leading_space() -> None:
    backend = RecordingBackend()
    lm = BackendLM(backend, 4)
    requests = [
        _req("loglikelihood", ("The capital of France is", " Paris")),
        _req("loglikelihood", ("The capital of France is", "")),
        _req("loglikelihood", ("Q:", " banana")),
    ]
    out = lm.loglikelihood(requests)
    # The empty continuation is answered without the backend: log 1 = 0, trivially greedy.
    assert backend.scored == [("The capital of France is", " Paris"), ("Q:", " banana")]
    assert out == [(-6.0, True), (0.0, True), (-7.0, False)]


def test_loglikelihood_rolling_scores_the_whole_text_after_bos() -> None:
    backend = RecordingBackend()
    out = BackendLM(backend).loglikelihood_rolling([_req("loglikelihood_rolling", ("Hello world",))])
    assert backend.scored == [("", "Hello world")]
    assert out == [-11.0]


def test_backend_that_cannot_score_names_itself_and_the_fix() -> None:
    lm = BackendLM(NoScoringBackend())
    with pytest.raises(NotImplementedError, match=r"fake:fake-model cannot compute loglikelihood: the server") as err:
        lm.loglikelihood([_req("loglikelihood", ("a", " b"))])
    assert "Fix:" in str(err.value)
    with pytest.raises(NotImplementedError, match="loglikelihood_rolling"):
        lm.loglikelihood_rolling([_req("loglikelihood_rolling", ("a",))])


@pytest.mark.parametrize(
    ("gen_kwargs", "stop", "max_new", "temperature"),
    [
        ({"until": ["\n", "Question:"], "max_gen_toks": 16, "do_sample": False}, ("\n", "Question:"), 16, 0.0),
        ({"until": "\n\n"}, ("\n\n",), DEFAULT_MAX_GEN_TOKS, 0.0),
        ({}, (), DEFAULT_MAX_GEN_TOKS, 0.0),
        ({"do_sample": False, "temperature": 0.7}, (), DEFAULT_MAX_GEN_TOKS, 0.0),  # do_sample false wins
        ({"do_sample": True}, (), DEFAULT_MAX_GEN_TOKS, 1.0),
        ({"temperature": 0.5, "max_gen_toks": 3}, (), 3, 0.5),
    ],
)
def test_gen_kwargs_become_a_generation_request(
    gen_kwargs: dict[str, Any], stop: tuple[str, ...], max_new: int, temperature: float
) -> None:
    request, ignored = generation_request("Q: hi\nA:", gen_kwargs)
    assert (request.prompt, tuple(request.stop), request.max_new_tokens, request.temperature) == (
        "Q: hi\nA:",
        stop,
        max_new,
        temperature,
    )
    assert not request.is_chat and ignored == []


def test_generate_until_plumbs_requests_and_warns_once_about_unknown_kwargs(caplog: pytest.LogCaptureFixture) -> None:
    backend = RecordingBackend(answer=" cold\nQuestion: next")
    lm = BackendLM(backend, batch_size=3)
    kwargs = {"until": ["\n"], "max_gen_toks": 8, "top_p": 0.9}
    with caplog.at_level(logging.WARNING, logger="gemmawatch.evals.lm_eval_adapter"):
        texts = lm.generate_until([_req("generate_until", ("Q1", kwargs)), _req("generate_until", ("Q2", kwargs))])
    assert texts == [" cold", " cold"]
    assert [r.prompt for r in backend.generated] == ["Q1", "Q2"]
    assert backend.generated[0].stop == ("\n",) and backend.generated[0].max_new_tokens == 8
    assert backend.batch_sizes == [3]
    warned = [r.message for r in caplog.records if "top_p" in r.message]
    assert warned == ["gen_kwargs top_p are not supported by gemmawatch backends and are ignored"]


def test_failed_generations_are_recorded_and_scored_empty() -> None:
    backend = RecordingBackend(answer="yes", fail={1})
    lm = BackendLM(backend)
    texts = lm.generate_until([_req("generate_until", ("a", {}), 0), _req("generate_until", ("b", {}), 7)])
    assert texts == ["yes", ""]
    assert lm.failures == [{"task": "task_x", "doc_id": 7, "error_class": "timeout", "error": "read timed out"}]


def test_all_generations_failing_stops_the_run() -> None:
    lm = BackendLM(RecordingBackend(fail={0, 1}))
    with pytest.raises(BackendError, match=r"All 2 generations failed on fake:fake-model: timeout: read timed out"):
        lm.generate_until([_req("generate_until", ("a", {})), _req("generate_until", ("b", {}))])


def test_tok_encode_exists_only_when_the_backend_tokenizes() -> None:
    assert not hasattr(BackendLM(RecordingBackend()), "tok_encode")
    assert BackendLM(TokenizingBackend()).tok_encode("ab") == [97, 98]


def test_registered_in_lm_eval_and_loads_targets_by_name() -> None:
    from lm_eval.api.registry import get_model

    assert get_model("gemmawatch") is BackendLM
    with pytest.raises(UnknownNameError, match="Unknown target 'no-such-target'"):
        BackendLM.create_from_arg_string("target=no-such-target", {"batch_size": 2, "device": None})


def test_caching_lm_answers_repeats_from_the_cache(tmp_path: Path) -> None:
    from lm_eval.api.model import CachingLM

    backend = RecordingBackend()
    cached = CachingLM(BackendLM(backend), str(tmp_path / "cache.db"))
    first = cached.loglikelihood([_req("loglikelihood", ("x", " Paris"))])
    again = cached.loglikelihood([_req("loglikelihood", ("x", " Paris"))])
    assert first == again == [(-6.0, True)]
    assert backend.scored == [("x", " Paris")]  # the second call never reached the backend


def test_run_lm_eval_through_the_adapter_matches_the_fake_scores() -> None:
    """lm-eval's own scoring on the fake's outputs: MC picks the shortest choice; generation says 'cold'."""
    backend = RecordingBackend(answer=" cold\nQuestion: next")
    outcome = run_lm_eval(backend, ["smoke_mc_geography", "smoke_gen"], limit=3, batch_size=2)
    rows = {(m["task"], m["metric"]): m for m in outcome.metrics}
    docs = [json.loads(line) for line in (suite_dir() / "mc.jsonl").read_text().splitlines()]
    geography = [d for d in docs if d["subject"] == "geography"][:3]
    expected_acc = sum(min(range(4), key=lambda i: len(d["choices"][i])) == d["answer"] for d in geography) / 3
    assert rows[("smoke_mc_geography", "acc")]["value"] == pytest.approx(expected_acc)
    assert rows[("smoke_mc_geography", "acc")]["n"] == 3
    gen = [json.loads(line) for line in (suite_dir() / "gen.jsonl").read_text().splitlines()][:3]
    expected_em = sum(d["answer"].lower() == "cold" for d in gen) / 3
    assert rows[("smoke_gen", "exact_match")]["value"] == pytest.approx(expected_em)
    # Every option of every question was scored once, with lm-eval's " " delimiter in the continuation.
    assert len(backend.scored) == 12 and all(cont.startswith(" ") for _, cont in backend.scored)
    assert {(r.max_new_tokens, tuple(r.stop), r.temperature) for r in backend.generated} == {(16, ("\n",), 0.0)}
    assert len([s for s in outcome.samples if s["task"] == "smoke_gen"]) == 3
