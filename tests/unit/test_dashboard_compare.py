"""Unit tests of the Compare page's pure pieces: Pareto front, variant table, cost axes, run choice."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from gemmawatch.dashboard import charts_compare, compare_tables, tables
from gemmawatch.dashboard.compare_tables import COST_AXES, pareto_front


@pytest.mark.parametrize(
    ("x_high", "y_high", "expected"),
    [
        # Latency (lower better) vs accuracy: (1, .5) and (2, .8) trade off; (3, .7) is beaten by (2, .8).
        (False, True, [True, True, False]),
        # Tokens/s (higher better): (3, .7) is now fastest, so it joins the front; (1, .5) is beaten on both.
        (True, True, [False, True, True]),
        # Both lower-is-better (e.g. latency vs unsafe-output rate): (1, .5) beats both others.
        (False, False, [True, False, False]),
    ],
)
def test_pareto_front_respects_each_axis_direction(x_high: bool, y_high: bool, expected: list[bool]) -> None:
    points = [(1.0, 0.5), (2.0, 0.8), (3.0, 0.7)]
    assert pareto_front(points, x_higher_is_better=x_high, y_higher_is_better=y_high) == expected


def test_pareto_front_ties_and_missing_values() -> None:
    # Identical points do not dominate each other: both stay on the front.
    assert pareto_front([(1, 0.5), (1, 0.5)], x_higher_is_better=False, y_higher_is_better=True) == [True, True]
    # Equal on one axis, better on the other: dominates.
    assert pareto_front([(1, 0.5), (1, 0.6)], x_higher_is_better=False, y_higher_is_better=True) == [False, True]
    assert pareto_front([(1, 0.5), (2, 0.5)], x_higher_is_better=False, y_higher_is_better=True) == [True, False]
    # Missing / non-finite coordinates: never on the front, dominate nothing.
    points: list[tuple[object, object]] = [(None, 0.9), (0.5, math.nan), (2, 0.1), (math.inf, 1.0)]
    assert pareto_front(points, x_higher_is_better=False, y_higher_is_better=True) == [False, False, True, False]
    assert pareto_front([], x_higher_is_better=True, y_higher_is_better=True) == []


def test_significance_marks() -> None:
    mark = compare_tables.significance_mark
    assert [mark(p, 0.05) for p in (0.0005, 0.005, 0.03, 0.2, None, math.nan)] == ["***", "**", "*", "", "", ""]


def _row(run_id: int, task: str, metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "task": task, "metric": metric, "filter": "none", "value": value,
            "ci_low": value - 0.1, "ci_high": value + 0.1, "n": 10, **extra}  # fmt: skip


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row(1, "mmlu", "acc", 0.5),
            _row(2, "mmlu", "acc", 0.7),
            _row(3, "mmlu", "acc", 0.6),
            _row(1, "latency", "e2e_s_p50", 1.0),
            _row(2, "latency", "e2e_s_p50", 2.0),
            _row(2, "latency", "output_tokens_per_s_mean", 30.0),
            _row(3, "gsm8k", "exact_match", 0.2),  # only run 3 has this task
        ]
    )


def test_variant_table_paired_deltas_from_compare() -> None:
    comparisons = {
        2: {"alpha": 0.05, "metrics": [
            {"task": "mmlu", "metric": "acc", "filter": "none", "delta": 0.25, "ci": [0.1, 0.4], "p_adjusted": 0.004},
            {"task": "latency", "metric": "e2e_s_p50", "filter": "none", "delta": 1.0, "ci": None, "p_adjusted": None},
        ]},
        3: {"error": "Runs 1 and 3 share no items"},
    }  # fmt: skip
    labels = {1: "#1 a", 2: "#2 b", 3: "#3 c"}
    out = compare_tables.variant_table(_metrics(), [1, 2, 3], labels, comparisons).set_index(["task", "metric"])
    acc = out.loc[("mmlu", "acc")]
    # The paired delta of compare_runs, not the difference of the stored values (0.2).
    assert acc["#2 b Δ"] == pytest.approx(0.25) and acc["#2 b Δ 95% CI"] == "[0.1, 0.4]" and acc["#2 b sig."] == "**"
    assert acc["#1 a value"] == 0.5 and acc["#1 a n"] == 10 and acc["#1 a 95% CI"] == "[0.4, 0.6]"
    assert "#1 a Δ" not in out.columns  # the baseline has no delta
    assert out.loc[("latency", "e2e_s_p50"), "#2 b sig."] == ""  # no per-item pairs: no test, no mark
    assert math.isnan(acc["#3 c Δ"])  # runs that could not be paired: empty, not a guess
    gsm = out.loc[("gsm8k", "exact_match")]
    assert math.isnan(gsm["#1 a value"]) and gsm["#3 c value"] == 0.2  # a missing task stays visible
    assert compare_tables.variant_table(pd.DataFrame(), [1, 2], labels, {}).empty


def test_cost_frame_quality_keys_and_memory() -> None:
    metrics = _metrics()
    assert compare_tables.quality_keys(metrics) == [("gsm8k", "exact_match", "none"), ("mmlu", "acc", "none")]
    keys = compare_tables.quality_keys(metrics)
    assert keys[compare_tables.default_quality(metrics, keys)] == ("mmlu", "acc", "none")  # every run has it
    frame = compare_tables.cost_frame(metrics, [1, 2, 3], {1: "a"}, {1: 900.0}, ("mmlu", "acc", "none")).set_index(
        "run_id"
    )
    assert frame.loc[1, "run_label"] == "a" and frame.loc[3, "run_label"] == "#3"
    assert frame.loc[2, ["latency_p50_s", "tokens_per_s", "quality", "quality_n"]].tolist() == [2.0, 30.0, 0.7, 10]
    assert frame.loc[1, "peak_memory_mb"] == 900.0 and math.isnan(frame.loc[2, "peak_memory_mb"])
    assert math.isnan(frame.loc[3, "latency_p50_s"])
    summary = pd.DataFrame(
        [
            {"metric": "process.rss_mb", "max": 1200.0},
            {"metric": "gpu.memory_used_mb", "max": 5000.0},
            {"metric": "gpu.memory_used_mb", "max": 7000.0},
        ]
    )
    assert compare_tables.peak_memory(summary) == (7000.0, "gpu.memory_used_mb")  # GPU memory first
    assert compare_tables.peak_memory(summary.iloc[:1]) == (1200.0, "process.rss_mb")
    assert compare_tables.peak_memory(pd.DataFrame()) == (None, None)


def _runs() -> pd.DataFrame:
    rows = [
        (1, "eval", "a", "completed"), (2, "eval", "b", "completed"), (3, "eval", "a", "completed"),
        (4, "safety", "a", "completed"), (5, "load", "b", "completed"), (6, "eval", "b", "failed"),
        (7, "redteam", "c", "completed"),
    ]  # fmt: skip
    return tables.runs_frame(
        [{"id": i, "kind": k, "target": t, "status": s, "started_at": "2025-01-01T00:00:00Z"} for i, k, t, s in rows]
    )


def test_run_choice_latest_per_target() -> None:
    runs = _runs()
    assert compare_tables.default_runs(runs) == [2, 3]  # quality runs only, the failed one skipped
    assert compare_tables.latest_runs(runs, ["b", "a", "zzz"], "eval") == [2, 3]
    assert compare_tables.latest_by_kind(runs, ["a", "b"]) == {
        "a": {"quality": 3, "safety": 4},
        "b": {"quality": 2, "load": 5},
    }
    assert compare_tables.default_runs(tables.runs_frame([])) == []


def test_side_by_side_rows_per_target() -> None:
    metrics = pd.concat(
        [
            _metrics(),
            pd.DataFrame([{**_row(4, "safety", "refusal_rate", 0.9), "filter": "all"},
                          {**_row(4, "safety", "refusal_rate", 0.5), "filter": "weapons"}]),
        ]
    )  # fmt: skip
    latest = {"a": {"quality": 1, "safety": 4}, "b": {"quality": 2, "load": 5}}
    out = compare_tables.side_by_side(latest, metrics, {5: 123.0}, ("mmlu", "acc", "none")).set_index("target")
    assert out.loc["a", "refusal"] == 0.9 and out.loc["a", "refusal 95% CI"] == "[0.8, 1]"
    assert math.isnan(out.loc["b", "refusal"]) and out.loc["b", "peak output tok/s"] == 123.0
    assert out.loc["b", "quality"] == 0.7 and out.loc["b", "latency p50 (s)"] == 2.0


def test_pareto_scatter_marks_front_and_skips_missing() -> None:
    metrics = _metrics()
    frame = compare_tables.cost_frame(metrics, [1, 2, 3], {}, {}, ("mmlu", "acc", "none"))
    fig = charts_compare.pareto_scatter(frame, COST_AXES["latency"], y_label="mmlu / acc").to_dict()
    traces = {t["name"]: t for t in fig["data"]}
    # Run 3 has no latency: not drawn. Runs 1 (fast) and 2 (accurate) trade off: both on the front.
    assert list(traces[charts_compare.FRONT_NAME]["text"]) == ["#1", "#2"]
    assert charts_compare.OTHER_NAME not in traces
    assert list(traces["front"]["x"]) == [1.0, 2.0]  # the front line, sorted by x
    assert "lower is better" in fig["layout"]["xaxis"]["title"]["text"]
    assert charts_compare.pareto_scatter(frame.iloc[0:0], COST_AXES["latency"], y_label="y").layout.annotations
