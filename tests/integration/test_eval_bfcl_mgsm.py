"""``gemmawatch eval --dataset`` on BFCL and MGSM with the bundled Gemma: stored samples, per-category metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_support import gw

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import samples as sq

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BFCL = DATA / "bfcl_simple"
MGSM = DATA / "mgsm"
#: llama.cpp in process: the faster way to run the bundled Gemma on a CPU.
TARGET = "llamacpp:bundled:gemma-3-270m"


def _run(db: str, *args: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    proc = gw("eval", "--target", TARGET, *args, "--telemetry-interval", "0.05", "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"run_id"}
    shown = gw("runs", "show", str(payload["run_id"]), "--json", "--db", db)
    assert shown.returncode == 0, shown.stderr
    summary: dict[str, Any] = json.loads(shown.stdout)
    assert summary["kind"] == "eval" and summary["status"] == "completed", summary
    with session_scope(get_engine(db)) as s:
        return summary, sq.list_samples(s, payload["run_id"], limit=100)


def _metrics(summary: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    rows = {m["task"]: m for m in summary["metrics"] if m["metric"] == metric}
    for row in rows.values():
        assert row["n"] >= 1 and row["ci_low"] is not None and row["ci_low"] <= row["value"] <= row["ci_high"], row
        assert row["producer"] == metric
    return rows


@pytest.mark.model
@pytest.mark.skipif(not BFCL.is_dir(), reason=f"BFCL data not found at {BFCL}")
def test_bfcl_limit_2(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bfcl.db'}"
    summary, samples = _run(db, "--dataset", str(BFCL), "--limit", "2", "--max-new-tokens", "48")
    dataset = summary["config"]["dataset"]
    assert dataset["format"] == "bfcl" and dataset["items"] == 2 and len(dataset["sources"]) == 2
    assert [s["name"] for s in summary["config"]["scorers"]] == ["function_call"]
    assert sorted(s["doc_id"] for s in samples) == [0, 1]
    for sample in samples:
        assert sample["task"] == "bfcl/simple_python" and sample["error"] is None and sample["output_tokens"] > 0
        assert sample["prompt"].startswith("You have access to functions.")
        assert isinstance(json.loads(sample["target"]), list)  # BFCL's ground truth, as JSON
        assert sample["scores"]["function_call"] in (0.0, 1.0)
    rows = _metrics(summary, "function_call")
    assert set(rows) == {"bfcl", "bfcl/simple_python"} and rows["bfcl"]["n"] == 2


@pytest.mark.model
@pytest.mark.skipif(not MGSM.is_dir(), reason=f"MGSM data not found at {MGSM}")
def test_mgsm_one_problem_in_two_languages(tmp_path: Path) -> None:
    folder = tmp_path / "mgsm"
    folder.mkdir()
    for language in ("de", "zh"):
        shutil.copy(MGSM / f"mgsm_{language}.jsonl", folder)
    db = f"sqlite:///{tmp_path / 'mgsm.db'}"
    summary, samples = _run(db, "--dataset", str(folder), "--limit", "1", "--max-new-tokens", "64")
    assert summary["config"]["dataset"]["format"] == "mgsm" and summary["config"]["dataset"]["items"] == 2
    assert {(s["task"], s["doc_id"], s["target"]) for s in samples} == {("mgsm/de", 0, "18"), ("mgsm/zh", 0, "18")}
    for sample in samples:
        assert sample["error"] is None and sample["scores"]["numeric_match"] in (0.0, 1.0)
    rows = _metrics(summary, "numeric_match")
    assert set(rows) == {"mgsm", "mgsm/de", "mgsm/zh"}
    assert (rows["mgsm"]["n"], rows["mgsm/de"]["n"], rows["mgsm/zh"]["n"]) == (2, 1, 1)
