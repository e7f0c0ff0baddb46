"""Unit tests of the pure chart builders (no Streamlit, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gemmawatch.dashboard import charts


def _annotations(fig: object) -> list[str]:
    return [a.text for a in fig.layout.annotations]  # type: ignore[attr-defined]


def _metrics_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"run_label": "#1 a", "task": "mc", "metric": "acc", "filter": "none", "value": 0.5,
             "ci_low": 0.3, "ci_high": 0.8, "n": 20},
            {"run_label": "#2 b", "task": "mc", "metric": "acc", "filter": "none", "value": 0.6,
             "ci_low": 0.4, "ci_high": 0.75, "n": 20},
            {"run_label": "#1 a", "task": "gen", "metric": "exact_match", "filter": "strict", "value": 0.25,
             "ci_low": None, "ci_high": None, "n": 10},
            {"run_label": "#1 a", "task": "latency", "metric": "e2e_s_p50", "filter": "none", "value": 1.5,
             "ci_low": 1.25, "ci_high": 2.0, "n": 8},
        ]
    )


@pytest.mark.parametrize(
    "builder",
    [charts.metric_bars_with_ci, charts.telemetry_timeline, charts.latency_histogram],
)
def test_empty_frame_gives_no_data_annotation(builder: object) -> None:
    fig = builder(pd.DataFrame())  # type: ignore[operator]
    assert len(fig.data) == 0
    assert charts.NO_DATA in _annotations(fig)


def test_error_bar_arrays_are_distances_from_the_value() -> None:
    minus, plus = charts.error_bar_arrays(_metrics_frame())
    assert minus == pytest.approx([0.2, 0.2, 0.0, 0.25])
    assert plus == pytest.approx([0.3, 0.15, 0.0, 0.5])


def test_error_bar_arrays_without_ci_columns_are_zero() -> None:
    minus, plus = charts.error_bar_arrays(pd.DataFrame({"value": [1.0, 2.0]}))
    assert minus == [0.0, 0.0] and plus == [0.0, 0.0]


def test_metric_bars_facet_per_metric_and_trace_per_run() -> None:
    fig = charts.metric_bars_with_ci(_metrics_frame())
    titles = _annotations(fig)
    # One facet per metric; the filter is part of the name when it is not "none".
    assert titles == ["acc", "exact_match (strict)", "e2e_s_p50"]
    assert [t.type for t in fig.data] == ["bar"] * 4
    acc_a, acc_b = fig.data[0], fig.data[1]
    assert (acc_a.name, acc_b.name) == ("#1 a", "#2 b")
    assert list(acc_a.y) == [0.5]
    assert list(acc_a.error_y.arrayminus) == pytest.approx([0.2])
    assert list(acc_a.error_y.array) == pytest.approx([0.3])
    assert acc_a.error_y.symmetric is False
    latency = fig.data[3]
    assert list(latency.error_y.arrayminus) == pytest.approx([0.25])
    assert list(latency.error_y.array) == pytest.approx([0.5])
    # A run appears once in the legend even though it has bars in three facets.
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    # Each facet sits on its own axis, so scales never mix.
    assert len({t.yaxis for t in fig.data}) == 3
    assert fig.layout.barmode == "group"
    assert fig.layout.showlegend is True


def test_metric_bars_single_series_has_no_legend() -> None:
    fig = charts.metric_bars_with_ci(_metrics_frame().assign(run_label="#1 a"))
    assert fig.layout.showlegend is False
    assert {t.name for t in fig.data} == {"#1 a"}


def test_metric_bars_falls_back_to_run_id_labels() -> None:
    df = _metrics_frame().drop(columns=["run_label"]).assign(run_id=[1, 2, 1, 1])
    fig = charts.metric_bars_with_ci(df)
    assert {t.name for t in fig.data} == {"#1", "#2"}


def _telemetry_frame() -> pd.DataFrame:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(10):
        ts = t0 + timedelta(seconds=0.5 * i)
        rows.append({"ts": ts, "metric": "cpu.percent", "unit": "%", "value": 10.0 + i, "source": "psutil",
                     "labels": {}})
        for gpu in (0, 1):
            rows.append({"ts": ts, "metric": "gpu.util", "unit": "%", "value": float(gpu * 50 + i),
                         "source": "nvml", "labels": {"gpu": gpu}})
    return pd.DataFrame(rows)


def test_telemetry_timeline_row_per_metric_line_per_label() -> None:
    fig = charts.telemetry_timeline(_telemetry_frame())
    assert _annotations(fig) == ["cpu.percent (%)", "gpu.util (%)"]
    assert [t.type for t in fig.data] == ["scatter"] * 3
    assert [t.name for t in fig.data] == ["cpu.percent", "gpu.util gpu=0", "gpu.util gpu=1"]
    assert len(fig.data[0].x) == 10
    assert list(fig.data[2].y)[:2] == [50.0, 51.0]


def test_telemetry_timeline_metric_selection() -> None:
    fig = charts.telemetry_timeline(_telemetry_frame(), metrics=["gpu.util"])
    assert {t.name for t in fig.data} == {"gpu.util gpu=0", "gpu.util gpu=1"}
    fig = charts.telemetry_timeline(_telemetry_frame(), metrics=["nope"])
    assert charts.NO_DATA in _annotations(fig)


def test_latency_histogram_per_task_and_ignores_missing_latency() -> None:
    df = pd.DataFrame(
        {"task": ["a", "a", "b", "b"], "latency_s": [0.1, 0.2, None, 0.4]}
    )
    fig = charts.latency_histogram(df)
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert [list(t.x) for t in fig.data] == [[0.1, 0.2], [0.4]]
    none = charts.latency_histogram(pd.DataFrame({"task": ["a"], "latency_s": [None]}))
    assert charts.NO_DATA in _annotations(none)


def test_metric_key() -> None:
    assert charts.metric_key("acc", "none") == "acc"
    assert charts.metric_key("acc", None) == "acc"
    assert charts.metric_key("exact_match", "flexible") == "exact_match (flexible)"


def _steps_frame() -> pd.DataFrame:
    """Two runs: a 4-step sweep (knee at step 2, listed out of load order) and a single step."""
    rows = []
    sweep = [  # step, load order, req/s, e2e p50 and its CI
        (0, 0, 1.0, 0.50, 0.45, 0.55),
        (1, 3, 4.1, 2.00, 1.80, 2.30),
        (2, 1, 2.0, 0.55, 0.50, 0.61),
        (3, 2, 3.9, 0.90, None, None),
    ]
    for step, order, x, y, lo, hi in sweep:
        rows.append({"run_label": "#1 a", "step": step, "load_order": order, "profile": f"p{step}",
                     "request_throughput": x, "e2e_p50_s": y, "e2e_p50_s_ci_low": lo, "e2e_p50_s_ci_high": hi,
                     "e2e_p50_s_n": 40, "ttft_p99_s": None})
    rows.append({"run_label": "#2 b", "step": 0, "load_order": 0, "profile": "concurrent@4",
                 "request_throughput": 5.0, "e2e_p50_s": 0.3, "e2e_p50_s_ci_low": 0.25, "e2e_p50_s_ci_high": 0.4,
                 "e2e_p50_s_n": 40, "ttft_p99_s": None})  # fmt: skip
    return pd.DataFrame(rows)


def test_load_charts_on_empty_frames_say_no_data() -> None:
    for fig in (charts.throughput_latency_curve(pd.DataFrame()), charts.latency_ecdf(pd.DataFrame())):
        assert len(fig.data) == 0 and charts.NO_DATA in _annotations(fig)
    # A latency no step has: a figure that says so, not empty axes.
    fig = charts.throughput_latency_curve(_steps_frame(), latency="ttft_p99_s", latency_label="TTFT p99")
    assert len(fig.data) == 0 and _annotations(fig) == ["No TTFT p99 values"]
    assert charts.NO_DATA in _annotations(charts.latency_ecdf(pd.DataFrame({"run_label": ["a"], "ttft_s": [None]})))


def test_throughput_latency_curve_one_line_per_run_in_load_order() -> None:
    fig = charts.throughput_latency_curve(_steps_frame(), knees={"#1 a": 2})
    assert [t.name for t in fig.data] == ["#1 a", "#2 b"]
    assert [t.mode for t in fig.data] == ["lines+markers"] * 2
    sweep = fig.data[0]
    # Joined in increasing load (load_order), not by step index.
    assert list(sweep.x) == [1.0, 2.0, 3.9, 4.1]
    assert list(sweep.y) == [0.5, 0.55, 0.9, 2.0]
    assert [c[0] for c in sweep.customdata] == [0, 2, 3, 1]
    # CI error bars; a step without CI gets a zero-length bar, not NaN.
    assert list(sweep.error_y.arrayminus) == pytest.approx([0.05, 0.05, 0.0, 0.2])
    assert list(sweep.error_y.array) == pytest.approx([0.05, 0.06, 0.0, 0.3])
    assert sweep.error_y.symmetric is False
    # The knee (step 2) is a larger star with a "knee" note at its point; the other run has none.
    assert list(sweep.marker.symbol) == ["circle", charts.KNEE_SYMBOL, "circle", "circle"]
    assert list(sweep.marker.size)[1] == charts.KNEE_SIZE > list(sweep.marker.size)[0]
    assert list(fig.data[1].marker.symbol) == ["circle"]
    (note,) = fig.layout.annotations
    assert (note.text, note.x, note.y) == ("knee", 2.0, 0.55)
    assert fig.layout.xaxis.title.text == "request throughput (req/s)"


def test_throughput_latency_curve_without_load_order_sorts_by_throughput() -> None:
    fig = charts.throughput_latency_curve(_steps_frame().drop(columns=["load_order"]))
    assert list(fig.data[0].x) == [1.0, 2.0, 3.9, 4.1]
    assert "knee" not in _annotations(fig)


def test_latency_ecdf_per_run_with_vllm_percentiles() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.exponential(0.2, 501), rng.exponential(0.5, 100)
    df = pd.DataFrame({"run_label": ["#1 a"] * len(a) + ["#2 b"] * len(b), "ttft_s": [*a, *b]})
    df.loc[3, "ttft_s"] = None  # a request without a first token is left out
    fig = charts.latency_ecdf(df, max_points=50)
    assert [t.name for t in fig.data] == ["#1 a (n=500)", "#2 b (n=100)"]
    first = fig.data[0]
    assert len(first.x) == 50 and list(first.x) == sorted(first.x)
    assert first.y[0] == pytest.approx(1 / 500) and first.y[-1] == 1.0 and first.line.shape == "hv"
    kept = np.delete(a, 3)
    shapes = {s.name: s for s in fig.layout.shapes}
    assert set(shapes) == {f"{run} p{q}" for run in ("#1 a", "#2 b") for q in (50, 95, 99)}
    for q in (50, 95, 99):
        # numpy's default (linear) percentile, as vLLM's benchmark_serving computes it.
        assert shapes[f"#1 a p{q}"].x0 == pytest.approx(float(np.percentile(kept, q)), rel=1e-12)
        assert shapes[f"#1 a p{q}"].y1 == pytest.approx(q / 100)
        assert shapes[f"#2 b p{q}"].x0 == pytest.approx(float(np.percentile(b, q)), rel=1e-12)
    assert fig.layout.xaxis.ticksuffix == "s" and fig.layout.xaxis.type == "linear"
    assert charts.latency_ecdf(df, log_x=True).layout.xaxis.type == "log"


def test_latency_ecdf_without_series_column_is_one_line() -> None:
    fig = charts.latency_ecdf(pd.DataFrame({"e2e_s": [0.3, 0.1, 0.2]}), column="e2e_s")
    assert [t.name for t in fig.data] == ["all (n=3)"]
    assert list(fig.data[0].x) == [0.1, 0.2, 0.3]
