"""The CLI as users' scripts see it: exit codes, one-line errors, JSON on stdout, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import assert_user_error, gw, runs_json


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_unknown_target_is_one_line_and_writes_nothing(db: str) -> None:
    proc = gw("eval", "--target", "gemma-9000", "--tasks", "smoke", "--db", db)
    assert_user_error(proc, "Unknown target 'gemma-9000'", "gemma-3-270m")
    assert runs_json(db) == []


def test_unknown_task_is_one_line_and_writes_nothing(db: str) -> None:
    proc = gw("eval", "--target", "gemma-3-270m", "--tasks", "smoke,no_such_task_xyz", "--db", db)
    assert_user_error(proc, "no_such_task_xyz")
    assert runs_json(db) == []


def test_malformed_config_yaml(tmp_path: Path, db: str) -> None:
    bad = tmp_path / "gemmawatch.yaml"
    bad.write_text("targets:\n  broken: [unclosed\n")
    proc = gw("targets", "list", "--config", str(bad))
    assert_user_error(proc, "Malformed YAML", str(bad))


def test_malformed_task_yaml_in_include_path(tmp_path: Path, db: str) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "broken.yaml").write_text("task: broken_task\ndataset_path: [unclosed\n")
    proc = gw("eval", "--target", "gemma-3-270m", "--tasks", "broken_task", "--include-path", str(tasks), "--db", db)
    line = assert_user_error(proc)
    assert "broken" in line
    assert runs_json(db) == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("notadb://x", "notadb://x"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/nope", "127.0.0.1:1"),
        ("mysql+pymysql://root@127.0.0.1/test", "pip install"),
    ],
)
def test_bad_database_urls(url: str, fragment: str) -> None:
    assert_user_error(gw("runs", "list", "--db", url), fragment)


def test_env_var_selects_the_database(tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    proc = gw("runs", "list", "--json", env={"GEMMAWATCH_DB": f"sqlite:///{path}"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert path.exists()


def test_show_missing_run(db: str) -> None:
    assert_user_error(gw("runs", "show", "424242", "--db", db), "424242", "runs list")


def test_dashboard_refuses_public_bind_without_auth(db: str) -> None:
    assert_user_error(gw("dashboard", "--host", "0.0.0.0", "--db", db), "0.0.0.0")


def test_targets_list_shows_builtins_and_config(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_text("targets:\n  mine: {backend: transformers, model: /models/gemma, dtype: bfloat16}\n")
    proc = gw("targets", "list", "--json", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["gemma-3-270m"]["dtype"] == "float32"
    assert rows["gemma-3-270m-bf16"]["dtype"] == "bfloat16"
    assert rows["mine"]["model"] == "/models/gemma" and rows["mine"]["origin"] != rows["gemma-3-270m"]["origin"]


def test_db_upgrade(db: str) -> None:
    proc = gw("db", "upgrade", "--db", db)
    assert proc.returncode == 0, proc.stderr
    assert "revision" in proc.stderr


@pytest.mark.model
def test_model_failure_marks_the_run_failed(tmp_path: Path, db: str) -> None:
    missing = tmp_path / "no-model-here"
    proc = gw("eval", "--target", f"transformers:{missing}", "--tasks", "smoke", "--limit", "1", "--db", db)
    assert_user_error(proc, str(missing))
    runs = runs_json(db)
    assert len(runs) == 1
    assert runs[0]["status"] == "failed"
    assert str(missing) in runs[0]["error"]


@pytest.mark.model
def test_eval_json_contract_end_to_end(db: str) -> None:
    proc = gw(
        "eval",
        "--target",
        "gemma-3-270m",
        "--tasks",
        "smoke",
        "--limit",
        "2",
        "--latency-prompts",
        "2",
        "--json",
        "--db",
        db,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # stdout holds the JSON object and nothing else
    assert set(out) == {"run_id"} and isinstance(out["run_id"], int)

    runs = runs_json(db)
    assert [r["id"] for r in runs] == [out["run_id"]]
    assert {"id", "kind", "target", "status", "started_at", "finished_at"} <= set(runs[0])
    assert runs[0]["status"] == "completed" and runs[0]["target"] == "gemma-3-270m"

    show = gw("runs", "show", str(out["run_id"]), "--json", "--db", db)
    assert show.returncode == 0, show.stderr
    summary = json.loads(show.stdout)
    assert summary["status"] == "completed"
    assert summary["samples_count"] > 0 and summary["telemetry_count"] > 0
    # What produced the numbers, as the loaded backend reported it.
    loaded = summary["config"]["target"]
    assert loaded["dtype"] == "float32" and loaded["revision"].startswith("gguf-sha256:")
    assert summary["target_info"]["revision"] == loaded["revision"]
    by_key = {(m["task"], m["metric"]): m for m in summary["metrics"]}
    assert ("latency", "e2e_s_p50") in by_key
    accs = [m for m in summary["metrics"] if m["metric"] == "acc"]
    assert accs, summary["metrics"]
    for m in summary["metrics"]:
        assert {"task", "metric", "value", "stderr", "ci_low", "ci_high", "n"} <= set(m)
        assert m["n"] >= 1
        if m["ci_low"] is not None:
            assert m["ci_low"] <= m["value"] + 1e-9 <= m["ci_high"] + 2e-9
    human = gw("runs", "show", str(out["run_id"]), "--db", db)
    assert human.returncode == 0 and "95% CI" in human.stdout
