"""``gemmawatch eval --dataset`` and ``--scorers`` as users' scripts see them: real runs of the bundled Gemma."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import assert_user_error, gw

from gemmawatch.collectors import targets as targets_module
from gemmawatch.config import GemmawatchConfig
from gemmawatch.evals.quality import QUALITY_SCORERS
from gemmawatch.pipeline import EvalRequest, run_evaluations
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import samples as sq

ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
#: llama.cpp in process: the faster way to run the bundled Gemma on a CPU.
TARGET = "llamacpp:bundled:gemma-3-270m"
FAST = ("--max-new-tokens", "12", "--telemetry-interval", "0.05")
TINY = (
    '{"q": "What is the capital of France? Answer with one word.", "a": "Paris", "c": "geography"}\n'
    '{"q": "What is the opposite of hot? Answer with one word.", "a": ["cold", "chilly"], "c": "words"}\n'
    '{"q": "Name the largest ocean on Earth.", "a": "Pacific", "c": "geography"}\n'
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'eval.db'}"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text(TINY)
    return path


def _run_id(proc: Any) -> int:
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"run_id"} and isinstance(payload["run_id"], int)
    return int(payload["run_id"])


def _stored(run_id: int, db: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    proc = gw("runs", "show", str(run_id), "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    with session_scope(get_engine(db)) as s:
        return json.loads(proc.stdout), sq.list_samples(s, run_id, limit=1000), mq.metrics_for_runs(s, [run_id])


def _tiny_run(tiny: Path, db: str) -> int:
    return _run_id(
        gw(
            "eval", "--target", TARGET, "--dataset", str(tiny), "--prompt-field", "q", "--reference-field", "a",
            "--category-field", "c", "--scorers", "exact_match,token_f1,length", *FAST, "--json", "--db", db,
        )
    )  # fmt: skip


@pytest.mark.model
def test_tiny_jsonl_twice_and_compare(tiny: Path, db: str) -> None:
    first, second = _tiny_run(tiny, db), _tiny_run(tiny, db)
    summary, samples, metrics = _stored(first, db)
    assert summary["kind"] == "eval" and summary["status"] == "completed", summary
    assert summary["config"]["dataset"]["format"] == "jsonl" and summary["telemetry_count"] > 0
    assert [s["name"] for s in summary["config"]["scorers"]] == ["exact_match", "token_f1", "length"]
    assert len(samples) == 3 and {s["task"] for s in samples} == {"tiny/geography", "tiny/words"}
    for sample in samples:
        assert sample["error"] is None and sample["output_tokens"] > 0 and sample["latency_s"] > 0
        assert sample["scores"]["exact_match"] in (0.0, 1.0) and sample["scores"]["length"] >= 0
    assert {(m["task"], m["metric"]) for m in metrics} == {
        (t, m) for t in ("tiny", "tiny/geography", "tiny/words") for m in ("exact_match", "token_f1", "length")
    }
    for m in metrics:
        assert m["n"] >= 1 and m["ci_low"] is not None and m["ci_low"] <= m["value"] <= m["ci_high"], m
    assert next(m for m in metrics if (m["task"], m["metric"]) == ("tiny", "exact_match"))["n"] == 3

    proc = gw("compare", str(first), str(second), "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    comparison = json.loads(proc.stdout)
    assert comparison["paired_items"] == 3 and comparison["regressions"] == []
    names = {m["name"]: m for m in comparison["metrics"]}
    assert names["tiny/exact_match"]["n"] == 3 and names["tiny/exact_match"]["delta"] == 0.0  # greedy: same outputs
    assert "tiny/geography/token_f1" in names


@pytest.mark.model
@pytest.mark.skipif(not GSM8K.is_file(), reason="GSM8K test file not present next to the repository")
def test_gsm8k_limit_3(db: str) -> None:
    scorers = "numeric_match,token_f1" if "numeric_match" in QUALITY_SCORERS else "token_f1"
    run_id = _run_id(
        gw(
            "eval", "--target", TARGET, "--dataset", str(GSM8K), "--prompt-field", "question",
            "--reference-field", "answer", "--name", "gsm8k", "--scorers", scorers, "--limit", "3",
            *FAST, "--json", "--db", db,
        )
    )  # fmt: skip
    summary, samples, metrics = _stored(run_id, db)
    assert summary["status"] == "completed" and summary["config"]["dataset"]["items"] == 3
    assert summary["config"]["dataset"]["items_in_file"] == 1319
    assert sorted(s["doc_id"] for s in samples) == [0, 1, 2] and {s["task"] for s in samples} == {"gsm8k"}
    assert samples[0]["target"].endswith("#### 18")
    for name in scorers.split(","):
        (row,) = [m for m in metrics if m["metric"] == name]
        assert row["task"] == "gsm8k" and row["n"] == 3 and row["ci_low"] <= row["value"] <= row["ci_high"]


@pytest.mark.model
def test_scorers_on_lm_eval_generations_in_the_same_run(
    gemma_backend: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Shared:  # the session's model, never closed by the run
        def __init__(self, inner: Any) -> None:
            self._inner = inner
            self.info = inner.info

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def close(self) -> None:
            pass

    monkeypatch.setattr(targets_module, "load_backend", lambda info: Shared(gemma_backend))
    request = EvalRequest(
        targets=["gemma-3-270m"],
        tasks=["smoke_gen"],
        limit=2,
        latency_prompts=0,
        telemetry_interval_s=0.05,
        scorers=["token_f1", "length"],
        scorer_options={"length": {"unit": "chars"}},
    )
    (outcome,) = run_evaluations(request, db_url=sqlite_url, config=GemmawatchConfig())
    with session_scope(get_engine(sqlite_url)) as s:
        metrics = {(m["metric"], m["filter"]): m for m in mq.metrics_for_runs(s, [outcome.run_id])}
        samples = sq.list_samples(s, outcome.run_id)
    assert ("exact_match", "none") in metrics  # lm-eval's own metric, untouched
    for name in ("token_f1", "length"):
        row = metrics[(name, "quality")]
        assert row["task"] == "smoke_gen" and row["n"] == 2 and row["producer"] == name
    assert metrics[("length", "quality")]["details"]["args"]["unit"] == "chars"
    assert len(samples) == 2 and all(
        {"exact_match", "token_f1,quality", "length,quality"} <= set(s["scores"]) for s in samples
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ((), ["Neither --tasks nor --dataset given"]),
        (("--tasks", "smoke", "--dataset", "x.jsonl"), ["--tasks and --dataset both given"]),
        (("--tasks", "smoke", "--prompt-field", "q"), ["--prompt-field only apply to --dataset"]),
        (("--dataset", "{tiny}", "--include-path", "."), ["--include-path only applies to --tasks"]),
        (("--dataset", "{tiny}"), ["--format jsonl needs --prompt-field"]),
        (("--dataset", "{tiny}", "--prompt-field", "nope"), ["tiny.jsonl line 1: no field 'nope'"]),
        (("--dataset", "{tiny}", "--prompt-field", "q", "--scorers", "nope"), ["Unknown quality scorer 'nope'"]),
        (("--dataset", "{tiny}", "--prompt-field", "q", "--scorer-option", "x"), ["Malformed scorer option 'x'"]),
        (("--dataset", "{tiny}", "--prompt-field", "q", "--format", "nope"), ["Unknown dataset format 'nope'"]),
        (("--dataset", "{tiny}", "--prompt-field", "q", "--prompt-template", "Q:"), ["has no {prompt}"]),
        (("--tasks", "smoke", "--scorers", "nope"), ["Unknown quality scorer 'nope'. Available:"]),
        (("--tasks", "smoke", "--scorer-option", "length.unit=chars"), ["--scorer-option needs --scorers"]),
    ],
)
def test_cli_user_errors(tiny: Path, db: str, args: tuple[str, ...], fragments: list[str]) -> None:
    proc = gw("eval", "--target", "gemma-3-270m", *(a.format(tiny=tiny) for a in args), "--db", db)
    assert_user_error(proc, *fragments)
    assert proc.stdout == ""
