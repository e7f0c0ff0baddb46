"""The dataset-eval pipeline against a scripted in-process backend: what is stored, and how failures are stored."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.collectors import targets as targets_module
from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.compare import compare_runs
from gemmawatch.config import GemmawatchConfig
from gemmawatch.dataset_pipeline import DatasetRequest, run_dataset_evals
from gemmawatch.errors import BackendError, UserError
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import samples as sq


class ScriptedBackend:
    """Answers ``Paris`` to France, ``5`` to sums, echoes the rest; fails on ``boom``."""

    def __init__(self, info: TargetInfo, *, fail_all: bool = False) -> None:
        self.info = replace(info, dtype="scripted")
        self.fail_all = fail_all
        self.requests: list[GenerationRequest] = []
        self.batches: list[int] = []
        self.closed = False

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        self.requests.extend(requests)
        self.batches.append(len(requests))
        return [self._answer(r) for r in requests]

    def _answer(self, request: GenerationRequest) -> GenerationResult:
        prompt = str(request.prompt)
        error = "scripted failure" if self.fail_all or "boom" in prompt else None
        text = "Paris" if "France" in prompt else "5" if "+" in prompt else f"You said: {prompt}"
        return GenerationResult(
            text="" if error else text,
            input_tokens=len(prompt.split()),
            output_tokens=0 if error else 3,
            token_source="tokenizer",
            started_at=datetime.now(UTC),
            e2e_s=0.0 if error else 0.01,
            error=error,
            error_class="RuntimeError" if error else None,
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    holder: dict[str, Any] = {"fail_all": False}

    def load(info: TargetInfo) -> ScriptedBackend:
        holder["backend"] = ScriptedBackend(info, fail_all=holder["fail_all"])
        holder.setdefault("all", []).append(holder["backend"])
        return holder["backend"]

    monkeypatch.setattr(targets_module, "load_backend", load)
    return holder


DATASET = (
    '{"q": "Capital of France?", "a": "Paris", "c": "Geo", "id": "g1"}\n'
    '{"q": "Capital of Peru?", "a": ["Lima", "Lima, Peru"], "c": "Geo", "id": "g2"}\n'
    '{"q": "2+2?", "a": 4, "c": "Math", "id": "m1"}\n'
    '{"q": "2+3?", "a": "5", "c": "Math", "id": "m2"}\n'
    '{"q": "This one goes boom.", "a": "x", "c": "Math", "id": "m3"}\n'
)


def _request(tmp_path: Path, **kwargs: Any) -> DatasetRequest:
    path = tmp_path / "qa.jsonl"
    path.write_text(DATASET)
    base: dict[str, Any] = {
        "targets": ["gemma-3-270m"],
        "dataset": str(path),
        "format_options": {"prompt_field": "q", "reference_field": "a", "category_field": "c", "id_field": "id"},
        "batch_size": 2,
        "max_new_tokens": 8,
        "telemetry_interval_s": 0.01,
    }
    return DatasetRequest(**{**base, **kwargs})


def _stored(sqlite_url: str, run_id: int) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    with session_scope(get_engine(sqlite_url)) as s:
        summary = rq.run_summary(s, run_id)
        samples = {r["doc_id"]: r for r in sq.list_samples(s, run_id, limit=100)}
    assert summary is not None
    return summary, samples


def test_stored_run_samples_metrics_and_config(tmp_path: Path, sqlite_url: str, backend: dict[str, Any]) -> None:
    request = _request(tmp_path, prompt_template="Answer briefly.\n{prompt}", stop=["\n\n"], label="nightly")
    (outcome,) = run_dataset_evals(request, db_url=sqlite_url, config=GemmawatchConfig())
    assert outcome.status == "completed"
    scripted = backend["backend"]
    assert scripted.closed and scripted.batches == [2, 2, 1]
    assert all(r.chat and r.max_new_tokens == 8 and list(r.stop) == ["\n\n"] for r in scripted.requests)
    assert scripted.requests[0].prompt == "Answer briefly.\nCapital of France?"
    summary, samples = _stored(sqlite_url, outcome.run_id)
    assert (summary["kind"], summary["status"], summary["label"]) == ("eval", "completed", "nightly")
    assert summary["target_info"]["dtype"] == "scripted"
    config = summary["config"]
    path = str(tmp_path / "qa.jsonl")
    assert config["dataset"]["format"] == "jsonl" and config["dataset"]["name"] == "qa"
    assert config["dataset"]["sources"] == {path: hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    assert config["dataset"]["options"]["prompt_field"] == "q" and config["dataset"]["items"] == 5
    assert config["prompt_template"] == "Answer briefly.\n{prompt}" and config["chat"] is True
    assert [s["name"] for s in config["scorers"]] == ["exact_match", "token_f1"]
    assert all(s["version"] and isinstance(s["args"], dict) for s in config["scorers"])
    assert config["generation"] == {"max_new_tokens": 8, "stop": ["\n\n"], "temperature": 0.0, "batch_size": 2}
    assert samples[0]["task"] == "qa/geo" and samples[0]["prompt"] == "Answer briefly.\nCapital of France?"
    assert samples[0]["output"] == "Paris" and samples[0]["target"] == "Paris"
    assert samples[0]["scores"]["exact_match"] == 1.0 and samples[0]["scores"]["meta"] == {"id": "g1"}
    assert samples[1]["target"] == '["Lima", "Lima, Peru"]' and samples[1]["scores"]["exact_match"] == 0.0
    assert samples[2]["target"] == "4" and samples[3]["scores"]["exact_match"] == 1.0
    assert samples[4]["error"] == "RuntimeError: scripted failure" and samples[4]["scores"] == {
        "meta": {"id": "m3"}
    }  # no scores
    assert samples[0]["latency_s"] == 0.01 and samples[0]["output_tokens"] == 3
    with session_scope(get_engine(sqlite_url)) as s:
        stored = mq.metrics_for_runs(s, [outcome.run_id])
    metrics = {(m["task"], m["metric"]): m for m in stored}
    assert set(metrics) == {(t, m) for t in ("qa", "qa/geo", "qa/math") for m in ("exact_match", "token_f1")}
    overall = metrics[("qa", "exact_match")]
    assert (overall["value"], overall["n"]) == (0.5, 4)  # the failed generation is not counted
    assert overall["details"]["failed_generations"] == 1 and overall["details"]["subtasks"] == ["qa/geo", "qa/math"]
    assert metrics[("qa/math", "exact_match")]["n"] == 2
    for m in stored:
        assert m["n"] > 0 and 0.0 <= m["ci_low"] <= m["value"] <= m["ci_high"] <= 1.0
        assert m["producer"] == m["metric"] and m["details"]["version"] and m["task_version"]


def test_limit_no_chat_scorers_and_two_targets(tmp_path: Path, sqlite_url: str, backend: dict[str, Any]) -> None:
    request = _request(
        tmp_path,
        targets=["gemma-3-270m", "gemma-3-270m-bf16"],
        limit=1,
        chat=False,
        scorers=["exact_match", "length"],
        scorer_options={"length": {"unit": "chars"}},
    )
    outcomes = run_dataset_evals(request, db_url=sqlite_url, config=GemmawatchConfig())
    assert len(outcomes) == 2 and len(backend["all"]) == 2
    assert [r.prompt for r in backend["all"][0].requests] == ["Capital of France?", "2+2?"]  # one per category
    assert not any(r.chat for r in backend["all"][1].requests)
    summary, samples = _stored(sqlite_url, outcomes[1].run_id)
    assert sorted(samples) == [0, 2] and summary["config"]["dataset"]["limit"] == 1
    assert summary["config"]["scorers"][1]["args"]["unit"] == "chars"
    assert samples[0]["scores"]["length"] == 5.0


def test_compare_pairs_two_dataset_runs(tmp_path: Path, sqlite_url: str, backend: dict[str, Any]) -> None:
    first = run_dataset_evals(_request(tmp_path), db_url=sqlite_url, config=GemmawatchConfig())[0]
    second = run_dataset_evals(_request(tmp_path), db_url=sqlite_url, config=GemmawatchConfig())[0]
    with session_scope(get_engine(sqlite_url)) as s:
        comparison = compare_runs(s, first.run_id, second.run_id)
    assert comparison.paired_items == 5 and not comparison.regressions
    names = {m.name: m for m in comparison.metrics}
    assert {"qa/exact_match", "qa/geo/exact_match", "qa/math/token_f1"} <= set(names)
    assert names["qa/exact_match"].n == 4 and names["qa/exact_match"].delta == 0.0


def test_every_generation_failing_marks_the_run_failed(
    tmp_path: Path, sqlite_url: str, backend: dict[str, Any]
) -> None:
    backend["fail_all"] = True
    with pytest.raises(BackendError, match="every generation failed"):
        run_dataset_evals(_request(tmp_path), db_url=sqlite_url, config=GemmawatchConfig())
    with session_scope(get_engine(sqlite_url)) as s:
        (run,) = rq.list_runs(s)
        assert run["status"] == "failed" and "every generation failed" in run["error"]
        assert sq.count_samples(s, run["id"]) == 0  # nothing half-written
    assert backend["backend"].closed


def test_a_crash_mid_run_marks_it_failed(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Crashing(ScriptedBackend):
        def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
            raise RuntimeError("device lost")

    monkeypatch.setattr(targets_module, "load_backend", lambda info: Crashing(info))
    with pytest.raises(RuntimeError, match="device lost"):
        run_dataset_evals(_request(tmp_path), db_url=sqlite_url, config=GemmawatchConfig())
    with session_scope(get_engine(sqlite_url)) as s:
        (run,) = rq.list_runs(s)
    assert run["status"] == "failed" and run["error"] == "RuntimeError: device lost"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": ["gemma-9000"]}, "Unknown target 'gemma-9000'"),
        ({"scorers": ["exact_match", "nope"]}, "Unknown quality scorer 'nope'. Available:"),
        ({"scorer_options": {"rouge_l": {"use_stemmer": True}}}, "Options given for scorer rouge_l"),
        ({"prompt_template": "Q: {question}"}, r"has no \{prompt\}"),
        ({"format": "nope"}, "Unknown dataset format 'nope'"),
        ({"format_options": {"prompt_field": "nope"}}, "line 1: no field 'nope'"),
        ({"format_options": {}}, "needs --prompt-field"),
        ({"dataset": "missing.jsonl"}, "does not exist"),
        ({"batch_size": 0}, "must be at least 1"),
    ],
)
def test_user_errors_store_nothing(
    tmp_path: Path, sqlite_url: str, backend: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        run_dataset_evals(_request(tmp_path, **kwargs), db_url=sqlite_url, config=GemmawatchConfig())
    assert "backend" not in backend
    with session_scope(get_engine(sqlite_url)) as s:
        assert rq.list_runs(s) == []


def test_store_text_hash_keeps_scores_from_the_clear_text(
    tmp_path: Path, sqlite_url: str, backend: dict[str, Any]
) -> None:
    (outcome,) = run_dataset_evals(_request(tmp_path), db_url=sqlite_url, config=GemmawatchConfig(store_text="hash"))
    summary, samples = _stored(sqlite_url, outcome.run_id)
    assert summary["config"]["store_text"] == "hash"
    assert samples[0]["prompt"].startswith("sha256:") and samples[0]["output"].startswith("sha256:")
    assert samples[0]["scores"]["exact_match"] == 1.0
