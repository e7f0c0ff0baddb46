"""Unit tests of the load-run table shaping behind the Performance page (no Streamlit, no database)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from gemmawatch.dashboard import load_tables


def _metric(value: float, n: int, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n}


def _step(step: int, profile: dict[str, Any], label: str, rps: float, e2e: float, failed: int = 0) -> dict[str, Any]:
    done = 40 - failed
    return {
        "step": step,
        "filter": f"step{step:02d}",
        "details": {"step": step, "profile": profile, "label": label},
        "metrics": {
            "request_throughput": _metric(rps, done, rps * 0.9, rps * 1.1),
            "e2e_p50_s": _metric(e2e, done, e2e * 0.8, e2e * 1.2),
            "ttft_p50_s": _metric(e2e / 4, done),
            "error_rate": _metric(failed / 40, 40, 0.0, 0.1),
        },
    }


SYNC = {"kind": "synchronous", "concurrency": None, "rate": None}
SWEEP = [
    _step(0, SYNC, "synchronous", 2.0, 0.5),
    _step(1, {"kind": "concurrent", "concurrency": 8, "rate": None}, "concurrent@8", 9.0, 0.9, failed=3),
    _step(2, {"kind": "constant", "concurrency": None, "rate": 4.5}, "constant@4.5/s", 4.4, 0.52),
]


def test_steps_frame_one_row_per_step_with_counts_and_load_order() -> None:
    frame = load_tables.steps_frame(SWEEP, run_id=7, run_label="#7 a")
    assert frame["step"].tolist() == [0, 1, 2]
    assert frame["profile"].tolist() == ["synchronous", "concurrent@8", "constant@4.5/s"]
    assert frame["kind"].tolist() == ["synchronous", "concurrent", "constant"]
    assert frame["concurrency"].tolist()[:2] == [1, 8] and math.isnan(frame["concurrency"].iloc[2])
    assert frame["offered_rate"].iloc[2] == 4.5 and frame["offered_rate"].iloc[:2].isna().all()
    # Counts come back exactly from error_rate (failed / judged, n = judged).
    assert frame["done"].tolist() == [40, 37, 40] and frame["failed"].tolist() == [0, 3, 0]
    assert frame["e2e_p50_s"].tolist() == [0.5, 0.9, 0.52]
    assert frame["e2e_p50_s_ci_low"].tolist() == pytest.approx([0.4, 0.72, 0.416])
    assert frame["e2e_p50_s_n"].tolist() == [40, 37, 40]
    # Closed-loop steps at their achieved rate, open-loop ones at their offered rate: 2.0 < 4.5 < 9.0.
    assert frame["load_order"].tolist() == [0, 2, 1]
    # Metrics the run did not store are NaN columns, so charts can ask for them.
    assert frame["goodput"].isna().all() and frame["itl_p50_s"].isna().all()
    assert set(frame["run_label"]) == {"#7 a"} and set(frame["run_id"]) == {7}


def test_closed_loop_sweep_is_ordered_by_concurrency() -> None:
    steps = [
        _step(0, {"kind": "concurrent", "concurrency": 16}, "concurrent@16", 10.0, 2.0),
        _step(1, {"kind": "concurrent", "concurrency": 2}, "concurrent@2", 12.0, 0.2),
        _step(2, SYNC, "synchronous", 5.0, 0.1),
    ]
    frame = load_tables.steps_frame(steps, run_id=1, run_label="#1")
    assert frame["load_order"].tolist() == [2, 1, 0]


def test_steps_frame_of_a_run_without_metrics_is_empty() -> None:
    frame = load_tables.steps_frame([], run_id=1, run_label="#1")
    assert frame.empty and {"run_id", "step", "profile", "done"} <= set(frame.columns)
    assert load_tables.step_table(frame).empty


def test_step_table_value_ci_and_n_per_metric() -> None:
    table = load_tables.step_table(load_tables.steps_frame(SWEEP, run_id=7, run_label="#7 a"))
    assert table.columns.tolist()[:8] == ["run", "step", "profile", "done", "failed", "req/s", "req/s 95% CI",
                                          "req/s n"]  # fmt: skip
    assert table["req/s"].tolist() == [2.0, 9.0, 4.4]
    assert table["req/s 95% CI"].tolist()[0] == "[1.8, 2.2]"
    # A metric without bounds has an empty CI cell, and metrics nobody stored have no columns.
    assert table["TTFT p50 (s) 95% CI"].tolist() == ["", "", ""]
    assert "goodput (req/s)" not in table.columns and "TPOT p50 (s)" not in table.columns


def _runs() -> pd.DataFrame:
    started = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {"id": 1, "target": "a", "label": None, "status": "completed", "profile": "sweep@5", "started_at": started},
        {"id": 2, "target": "b", "label": "bf16", "status": "completed", "profile": "concurrent@4",
         "started_at": started},
        {"id": 3, "target": "a", "label": None, "status": "failed", "profile": "sweep@5", "started_at": started},
        {"id": 4, "target": "c", "label": None, "status": "running", "profile": None, "started_at": started},
        {"id": 5, "target": "d", "label": None, "status": "partial", "profile": "poisson@2/s", "started_at": started},
        {"id": 6, "target": "e", "label": None, "status": "completed", "profile": "synchronous",
         "started_at": started},
    ]  # fmt: skip
    return load_tables.load_runs_frame(rows)


def test_load_runs_frame_and_labels() -> None:
    runs = _runs()
    assert runs.columns.tolist() == load_tables.LOAD_RUN_COLUMNS
    assert runs["id"].tolist() == [6, 5, 4, 3, 2, 1]
    # The run's own label when it has one, else its target; never "nan".
    assert dict(zip(runs["id"], runs["run_label"], strict=True))[2] == "#2 bf16"
    assert dict(zip(runs["id"], runs["run_label"], strict=True))[1] == "#1 a"
    assert load_tables.load_run_label({"id": 9, "label": float("nan"), "target": None}) == "#9 -"
    assert load_tables.load_runs_frame([]).columns.tolist() == load_tables.LOAD_RUN_COLUMNS


def test_default_runs_latest_finished_per_target_newest_targets_first() -> None:
    runs = _runs()
    # Target a: run 1 (completed) beats the newer failed run 3; c has only a running run.
    assert load_tables.default_load_runs(runs) == [2, 4, 5, 6]
    assert load_tables.default_load_runs(runs, max_runs=6) == [1, 2, 4, 5, 6]
    assert load_tables.default_load_runs(runs, max_runs=2) == [5, 6]
    assert load_tables.default_load_runs(runs.iloc[0:0]) == []


def test_measured_ok_keeps_successful_requests_of_the_window() -> None:
    timings = pd.DataFrame(
        {"phase": ["warmup", "measure", "measure", "cooldown"], "ok": [True, True, False, True], "ttft_s": [1, 2, 3, 4]}
    )
    assert load_tables.measured_ok(timings)["ttft_s"].tolist() == [2]
    assert load_tables.measured_ok(pd.DataFrame()).empty


def test_knees_and_saturation_sentences() -> None:
    frame = load_tables.steps_frame(SWEEP, run_id=7, run_label="#7 a")
    knee = {"step": 2, "reason": "Throughput stopped rising after step 2.", "max_throughput": 9.0, "points": []}
    assert load_tables.knee_steps({"#7 a": knee, "#8 b": None, "#9 c": {"step": None}}) == {"#7 a": 2}
    assert load_tables.saturation_sentence("#7 a", knee, frame) == (
        "#7 a: knee at step 2 (constant@4.5/s). Highest throughput of any step: 9 req/s. "
        "Throughput stopped rising after step 2."
    )
    assert "no knee found" in load_tables.saturation_sentence("#7 a", None, frame)
    assert "two steps" in load_tables.saturation_sentence("#7 a", None, frame.iloc[:2])
    assert "one load level" in load_tables.saturation_sentence("#7 a", None, frame.iloc[:1])
