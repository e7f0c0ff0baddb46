"""`gemmawatch parity` on the real bundled Gemma: same target twice, fp32 vs bf16, stored runs, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import gw

from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.config import GemmawatchConfig
from gemmawatch.errors import BackendError, UnknownNameError
from gemmawatch.evals.parity import run_parity
from gemmawatch.parity_pipeline import ParityRequest, run_parity_targets
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import samples as sq

SUBTASKS = 5  # smoke_mc_<subject>: --limit 2 gives 2 items each


@pytest.mark.model
def test_same_backend_twice_agrees_fully(gemma_backend: TransformersBackend) -> None:
    outcome = run_parity(gemma_backend, gemma_backend, limit=2)
    s = outcome.stats
    assert s.n == 2 * SUBTASKS
    assert (s.agreement, s.acc_diff, s.acc_diff_ci, s.mcnemar_p) == (1.0, 0.0, (0.0, 0.0), 1.0)
    assert s.acc_a == s.acc_b and outcome.disagreements() == []
    assert outcome.loglikelihood_gap()["max_abs_ll_diff"] == 0.0  # same model, same batches: identical scores
    tasks = {a.task for a, _ in outcome.pairs}
    assert tasks == {f"smoke_mc_{x}" for x in ("arithmetic", "science", "geography", "vocabulary", "common_sense")}
    assert all(a.item_id.split("-")[0] in a.task for a, _ in outcome.pairs)


@pytest.fixture(scope="module")
def fp32_vs_bf16(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    db = f"sqlite:///{tmp_path_factory.mktemp('parity') / 'gw.db'}"
    proc = gw(
        "parity", "gemma-3-270m", "gemma-3-270m-bf16", "--limit", "2", "--json", "--db", db,
        env={"GEMMAWATCH_TORCH_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return db, json.loads(proc.stdout)


@pytest.mark.model
def test_cli_fp32_vs_bf16_json_contract_and_stored_run(fp32_vs_bf16: tuple[str, dict]) -> None:
    db, payload = fp32_vs_bf16
    assert {"agreement", "n", "run_id", "acc_a", "acc_b", "acc_diff", "ci", "mcnemar_p"} <= set(payload)
    assert payload["n"] == 2 * SUBTASKS and 0.0 <= payload["agreement"] <= 1.0
    assert payload["acc_diff"] == pytest.approx(payload["acc_b"] - payload["acc_a"])
    lo, hi = payload["ci"]
    assert lo <= payload["acc_diff"] <= hi
    assert len(payload["disagreements"]) == round((1 - payload["agreement"]) * payload["n"])
    # bf16 rounding moves the scores a little, but not by whole nats on average.
    assert 0.0 < payload["mean_abs_ll_diff"] < 1.0

    with session_scope(get_engine(db)) as s:
        summary = rq.run_summary(s, payload["run_id"])
        samples = sq.list_samples(s, payload["run_id"], limit=100)
    assert summary is not None
    assert (summary["kind"], summary["status"], summary["target"]) == ("parity", "completed", "gemma-3-270m")
    assert summary["config"]["target_b"]["name"] == "gemma-3-270m-bf16"
    assert summary["config"]["target_b"]["dtype"] == "bfloat16"
    metrics = {m["metric"]: m for m in summary["metrics"] if m["task"] == "parity"}
    assert metrics["agreement"]["value"] == payload["agreement"] and metrics["agreement"]["n"] == payload["n"]
    assert (metrics["acc_diff"]["ci_low"], metrics["acc_diff"]["ci_high"]) == (lo, hi)
    assert len(samples) == payload["n"]
    assert {"pred_a", "pred_b", "gold", "agree"} <= set(samples[0]["scores"])
    assert summary["telemetry_count"] > 0  # sampled while both sides ran


def test_unknown_target_fails_before_a_run_exists(sqlite_url: str) -> None:
    with pytest.raises(UnknownNameError, match="Unknown target 'gemma-9000'"):
        run_parity_targets(ParityRequest("gemma-3-270m", "gemma-9000"), db_url=sqlite_url, config=GemmawatchConfig())
    with session_scope(get_engine(sqlite_url)) as s:
        assert rq.list_runs(s) == []


def test_target_that_fails_to_load_marks_the_run_failed(sqlite_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    request = ParityRequest(f"transformers:{missing}", "gemma-3-270m", limit=1, telemetry_interval_s=0.05)
    with pytest.raises(BackendError, match="does not exist"):
        run_parity_targets(request, db_url=sqlite_url, config=GemmawatchConfig())
    with session_scope(get_engine(sqlite_url)) as s:
        (run,) = rq.list_runs(s)
    assert (run["kind"], run["status"]) == ("parity", "failed")
    assert run["error"] == f"Model path '{missing}' does not exist. Fix: pass an existing model folder"
