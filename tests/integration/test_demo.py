"""`gemmawatch demo --no-dashboard`: two real runs of the bundled Gemma with scores, telemetry and alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import gw, runs_json

pytestmark = pytest.mark.model


def test_demo_stores_two_variant_runs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = gw("demo", "--no-dashboard", "--limit", "2", "--db", db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_json(db)
    assert sorted(r["target"] for r in runs) == ["gemma-3-270m", "gemma-3-270m-bf16"]
    assert all(r["status"] == "completed" and r["kind"] == "demo" for r in runs)
    for run in runs:
        summary = json.loads(gw("runs", "show", str(run["id"]), "--json", "--db", db).stdout)
        tasks = {m["task"] for m in summary["metrics"]}
        assert "latency" in tasks and any(t.startswith("smoke") for t in tasks)
        assert summary["telemetry_count"] > 0
        assert summary["target_info"]["dtype"] in {"float32", "bfloat16"}
    # The summary table names both variants on stdout.
    assert "gemma-3-270m-bf16" in proc.stdout and "alert(s) firing" in proc.stdout
