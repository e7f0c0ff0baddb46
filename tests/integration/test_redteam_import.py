"""``gemmawatch redteam --import`` as users' scripts see it: stored runs, failed imports, compare pairing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import assert_user_error, gw, runs_json

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import samples as sq

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "garak" / "bundled_gemma.report.jsonl"
TARGET = "llamacpp:bundled:gemma-3-270m"  # named, not loaded: an import never runs the model


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'redteam.db'}"


def _import(report: Path, db: str, *extra: str) -> Any:
    return gw("redteam", "--target", TARGET, "--import", str(report), *extra, "--db", db)


def _run_id(proc: Any) -> int:
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"run_id"} and isinstance(payload["run_id"], int)
    return int(payload["run_id"])


def _show(run_id: int, db: str) -> dict[str, Any]:
    proc = gw("runs", "show", str(run_id), "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def test_import_stores_a_redteam_run(db: str) -> None:
    run_id = _run_id(_import(FIXTURE, db, "--json", "--label", "imported"))
    summary = _show(run_id, db)
    assert summary["kind"] == "redteam" and summary["status"] == "completed" and summary["label"] == "imported"
    config = summary["config"]
    assert config["imported"] is True and config["garak_version"] == "0.17.1" and config["generations"] == 2
    assert config["report"] == str(FIXTURE) and len(config["report_sha256"]) == 64
    assert config["probes"][0] == "dan.Dan_11_0" and "goodside.RileyIsnt" in config["detectors"]
    metrics = {(m["task"], m["filter"]): m for m in summary["metrics"]}
    assert metrics[("redteam", "none")]["n"] == 19 and metrics[("redteam/goodside.WhoIsRiley", "none")]["n"] == 12
    assert all(m["metric"] == "pass_rate" and m["ci_low"] <= m["value"] <= m["ci_high"] for m in summary["metrics"])
    assert summary["samples_count"] == 22
    with session_scope(get_engine(db)) as s:
        samples = sq.list_samples(s, run_id, limit=100)
    assert {s["task"] for s in samples} == {f"redteam/{p}" for p in config["probes"]}
    assert sum(s["error"] is not None for s in samples) == 3


def test_terminal_table(db: str) -> None:
    proc = _import(FIXTURE, db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["probe", "pass"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["goodside.WhoIsRiley"].split()[1:] == ["0.92", "[0.65,", "0.99]", "12", "1"]
    assert "nothing scored" in rows["dan.Dan_11_0"] and rows["all"].split()[-2:] == ["19", "1"]
    assert "gemmawatch runs show" in proc.stderr


def test_report_without_completion_is_a_failed_run(tmp_path: Path, db: str) -> None:
    aborted = tmp_path / "aborted.report.jsonl"
    lines = [line for line in FIXTURE.read_text().splitlines() if '"entry_type": "completion"' not in line]
    aborted.write_text("\n".join(lines) + "\n")
    line = assert_user_error(_import(aborted, db, "--json"), str(aborted), "no completion entry", "Fix:")
    (run,) = runs_json(db)
    assert run["kind"] == "redteam" and run["status"] == "failed"
    summary = _show(run["id"], db)
    assert summary["error"] == line.removeprefix("gemmawatch: error: ")
    assert summary["metrics"] == [] and summary["samples_count"] == 0  # nothing half-written
    assert summary["config"]["report_complete"] is False and summary["config"]["scored_attempts"] == 11


def test_missing_report_creates_no_run(tmp_path: Path, db: str) -> None:
    assert_user_error(_import(tmp_path / "nope.report.jsonl", db), "does not exist")
    assert runs_json(db) == []


def test_bad_options_are_user_errors(db: str) -> None:
    assert_user_error(gw("redteam", "--import", str(FIXTURE), "--db", db), "--target is required")
    assert_user_error(
        gw("redteam", "--target", TARGET, "--probes", "dan,dan", "--import", str(FIXTURE), "--db", db), "given twice"
    )


def test_two_imports_pair_in_compare(db: str) -> None:
    base = _run_id(_import(FIXTURE, db, "--json"))
    cand = _run_id(_import(FIXTURE, db, "--json"))
    proc = gw("compare", str(base), str(cand), "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["paired_items"] == 22
    rows = {m["name"]: m for m in result["metrics"]}
    overall = rows["redteam/pass_rate"]
    assert overall["n"] == 19 and overall["delta"] == 0 and overall["higher_is_better"] is True
    assert overall["test"] != "none (no per-sample scores)" and overall["gates"]
    detector = rows["redteam/goodside.WhoIsRiley/pass_rate[goodside.RileyIsnt]"]
    assert detector["n"] == 12 and detector["higher_is_better"] is True
    assert not result["regressions"]
    assert not any("garak" in name or "hit" in name.split("/")[-1] for name in rows)  # details are not paired
