"""Unit tests of the dashboard's table shaping (pure pandas)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from gemmawatch.dashboard import tables

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _run(id_: int, target: str | None, status: str = "completed", minutes: float = 2.0) -> dict[str, object]:
    return {
        "id": id_, "kind": "eval", "target": target, "label": None, "status": status,
        "started_at": T0 + timedelta(hours=id_),
        "finished_at": None if status == "running" else T0 + timedelta(hours=id_, minutes=minutes),
        "error": "boom" if status == "failed" else None,
    }


def test_runs_frame_columns_order_and_duration() -> None:
    frame = tables.runs_frame([_run(1, "a"), _run(2, "b", "running"), _run(3, "a", "failed", 0.5)])
    assert list(frame.columns) == tables.RUN_COLUMNS
    assert frame["id"].tolist() == [3, 2, 1]  # newest first
    assert frame.loc[frame["id"] == 1, "duration_s"].item() == 120.0
    assert math.isnan(frame.loc[frame["id"] == 2, "duration_s"].item())
    assert frame.loc[frame["id"] == 3, "error"].item() == "boom"


def test_runs_frame_empty_keeps_columns() -> None:
    frame = tables.runs_frame([])
    assert frame.empty and list(frame.columns) == tables.RUN_COLUMNS


def test_run_label() -> None:
    assert tables.run_label({"id": 7, "target": "gemma-3-270m"}) == "#7 gemma-3-270m"
    assert tables.run_label({"id": 8, "target": None}) == "#8 -"


def test_format_ci() -> None:
    assert tables.format_ci(0.12345, 0.5) == "[0.123, 0.5]"
    assert tables.format_ci(None, 0.5) == ""
    assert tables.format_ci(float("nan"), 0.5) == ""
    assert tables.format_ci(pd.NA, 0.5) == ""


def test_metrics_table() -> None:
    rows = [
        {"task": "b", "metric": "acc", "filter": "none", "value": 0.5, "stderr": 0.1, "ci_low": 0.3,
         "ci_high": 0.7, "n": 20, "producer": "lm-eval", "producer_version": "0.4.13", "task_version": "1.0"},
        {"task": "a", "metric": "e2e_s_p50", "filter": "none", "value": 1.2, "stderr": None, "ci_low": None,
         "ci_high": None, "n": 8, "producer": "gemmawatch.latency", "producer_version": "",
         "task_version": None},
    ]
    frame = tables.metrics_table(rows)
    assert frame["task"].tolist() == ["a", "b"]
    assert frame["95% CI"].tolist() == ["", "[0.3, 0.7]"]
    assert frame["producer"].tolist() == ["gemmawatch.latency", "lm-eval 0.4.13"]
    assert frame["n"].tolist() == [8, 20]
    assert tables.metrics_table([]).empty


def _metrics() -> pd.DataFrame:
    rows = []
    for run_id, acc, lat in ((1, 0.5, 1.0), (2, 0.75, 1.5)):
        rows.append({"run_id": run_id, "task": "mc", "metric": "acc", "filter": "none", "value": acc,
                     "ci_low": acc - 0.1, "ci_high": acc + 0.1, "n": 20})
        rows.append({"run_id": run_id, "task": "latency", "metric": "e2e_s", "filter": "p50", "value": lat,
                     "ci_low": None, "ci_high": None, "n": 8})
    # A task only run 2 has: must stay visible with an empty cell for run 1.
    rows.append({"run_id": 2, "task": "gen", "metric": "exact_match", "filter": "none", "value": 0.2,
                 "ci_low": 0.1, "ci_high": 0.3, "n": 10})
    return pd.DataFrame(rows)


def test_compare_table_side_by_side_with_delta() -> None:
    out = tables.compare_table(_metrics(), [1, 2], {1: "#1 a", 2: "#2 b"})
    assert out[["task", "metric"]].values.tolist() == [
        ["gen", "exact_match"], ["latency", "e2e_s (p50)"], ["mc", "acc"]
    ]
    assert list(out.columns) == [
        "task", "metric", "#1 a value", "#1 a 95% CI", "#1 a n",
        "#2 b value", "#2 b Δ", "#2 b 95% CI", "#2 b n",
    ]
    mc = out[out["task"] == "mc"].iloc[0]
    assert mc["#2 b Δ"] == pytest.approx(0.25)
    assert mc["#1 a 95% CI"] == "[0.4, 0.6]"
    assert mc["#2 b n"] == 20
    gen = out[out["task"] == "gen"].iloc[0]
    assert math.isnan(gen["#1 a value"]) and pd.isna(gen["#1 a n"]) and gen["#1 a 95% CI"] == ""
    assert math.isnan(gen["#2 b Δ"])


def test_compare_table_order_follows_selection() -> None:
    out = tables.compare_table(_metrics(), [2, 1], {})
    assert "#1 Δ" in out.columns and "#2 Δ" not in out.columns
    lat = out[out["task"] == "latency"].iloc[0]
    assert lat["#1 Δ"] == pytest.approx(-0.5)


def test_compare_table_empty() -> None:
    assert tables.compare_table(pd.DataFrame(), [1, 2], {}).empty
    assert tables.compare_table(_metrics(), [], {}).empty


def test_default_compare_runs_latest_completed_per_target() -> None:
    frame = tables.runs_frame(
        [_run(1, "a"), _run(2, "b"), _run(3, "a"), _run(4, "b", "failed"), _run(5, "a", "running")]
    )
    assert tables.default_compare_runs(frame) == [2, 3]
    assert tables.default_compare_runs(tables.runs_frame([])) == []


def test_split_latency() -> None:
    scores, latency = tables.split_latency(_metrics())
    assert set(scores["task"]) == {"mc", "gen"} and set(latency["task"]) == {"latency"}
    assert len(scores) + len(latency) == len(_metrics())
    empty_scores, empty_latency = tables.split_latency(pd.DataFrame())
    assert empty_scores.empty and empty_latency.empty
