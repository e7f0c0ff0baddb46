"""Telemetry page's pure charts and its catalog queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from telemetry_fixtures import LIVE_METRICS, add_live_telemetry

from gemmawatch.dashboard import charts_telemetry
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import telemetry_catalog

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _points(counts: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + timedelta(minutes=i) for i in range(len(counts))], "min": 1.0, "avg": 2.0,
                         "max": 3.0, "count": counts, "resolution": "1m"})  # fmt: skip


def test_series_figure_band_only_for_buckets() -> None:
    fig = charts_telemetry.series_figure(_points([5, 5]), metric="gpu.power_w", unit="W")
    assert [t.name for t in fig.data] == ["gpu.power_w max", "gpu.power_w min", "gpu.power_w"]
    assert fig.data[1].fill == "tonexty" and fig.layout.title.text == "gpu.power_w (W) · 1m"
    raw = charts_telemetry.series_figure(_points([1, 1]), metric="cpu.percent", unit="%")
    assert len(raw.data) == 1
    empty = charts_telemetry.series_figure(_points([]), metric="x", unit="s")
    assert not empty.data and "no data" in empty.layout.title.text


def test_sample_segments_and_timeline_share_the_time_axis() -> None:
    windows = pd.DataFrame({"task": ["a", "b", "a"], "doc_id": [0, 0, 1], "error": [None, None, "boom"],
                            "started_at": [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)],
                            "latency_s": [0.5, 1.5, 0.25]})  # fmt: skip
    segments = charts_telemetry.sample_segments(windows)
    assert segments["a"]["x"] == [T0, T0 + timedelta(seconds=0.5), None,
                                  T0 + timedelta(seconds=2), T0 + timedelta(seconds=2.25), None]  # fmt: skip
    assert segments["a"]["text"][3] == "a #1: 0.250 s (error)"
    fig = charts_telemetry.run_timeline({"cpu.percent": (_points([3, 3]), "%")}, windows)
    assert [t.xaxis for t in fig.data] == ["x", "x", "x", "x2", "x2"]
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"  # shared x
    assert fig.layout.yaxis2.type == "category"


def test_catalog_queries(db_url: str) -> None:
    add_live_telemetry(db_url, minutes=1)
    now = datetime.now(UTC)
    with session_scope(get_engine(db_url)) as s:
        found = telemetry_catalog.metrics_in_range(s, now - timedelta(minutes=5), now)
        assert [m["metric"] for m in found] == sorted(LIVE_METRICS)
        assert {m["metric"]: (m["source"], m["unit"]) for m in found} == LIVE_METRICS
        assert telemetry_catalog.metrics_in_range(s, now - timedelta(days=3), now - timedelta(days=2)) == []
        assert telemetry_catalog.metrics_in_range(s, now - timedelta(minutes=5), now, run_id=1) == []
        assert telemetry_catalog.sample_windows(s, 1) == [] and telemetry_catalog.count_sample_windows(s, 1) == 0
