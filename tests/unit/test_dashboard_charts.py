"""Unit tests of the pure chart builders (no Streamlit, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
