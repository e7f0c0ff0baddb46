"""Pure Plotly figures of the Telemetry page: one metric over time, a run's telemetry aligned with its samples."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["SERIES_HEIGHT", "run_timeline", "sample_segments", "series_figure"]

#: Pixel height of one live metric chart.
SERIES_HEIGHT = 230
_BAND = "rgba(31,119,180,0.18)"


def _band_traces(frame: pd.DataFrame, name: str, *, showlegend: bool) -> list[go.Scatter]:
    """Min-max band (when points aggregate several readings) under the mean line."""
    traces = []
    if (frame["count"] > 1).any():
        traces.append(go.Scatter(x=frame["ts"], y=frame["max"], mode="lines", line={"width": 0}, hoverinfo="skip",
                                 showlegend=False, name=f"{name} max"))  # fmt: skip
        traces.append(go.Scatter(x=frame["ts"], y=frame["min"], mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=_BAND, hoverinfo="skip", showlegend=False, name=f"{name} min"))  # fmt: skip
    traces.append(
        go.Scatter(
            x=frame["ts"], y=frame["avg"], mode="lines", name=name, showlegend=showlegend, line={"width": 1.6},
            customdata=frame[["min", "max", "count"]].to_numpy(),
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S}<br>avg %{y:.4g} (min %{customdata[0]:.4g}, max %{customdata[1]:.4g},"
            " %{customdata[2]} readings)<extra></extra>",
        )
    )  # fmt: skip
    return traces


def series_figure(
    frame: pd.DataFrame, *, metric: str, unit: str, x_range: tuple[datetime, datetime] | None = None
) -> go.Figure:
    """One metric's points (``telemetry_series`` rows): mean line, min-max band when points are buckets.

    The title names the resolution the points were read at (``raw``, ``1m``, ``1h``, ``1d``);
    ``x_range`` pins the time axis (so charts of one range line up).
    """
    fig = go.Figure(_band_traces(frame, metric, showlegend=False) if not frame.empty else [])
    resolution = ", ".join(sorted(set(frame["resolution"]))) if not frame.empty else "no data"
    fig.update_layout(
        title={"text": f"{metric} ({unit}) · {resolution}", "font": {"size": 13}},
        height=SERIES_HEIGHT, margin={"l": 40, "r": 10, "t": 36, "b": 28}, showlegend=False,
        yaxis={"rangemode": "tozero" if unit in ("%", "MB", "W") else "normal"},
    )  # fmt: skip
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def sample_segments(windows: pd.DataFrame) -> dict[str, dict[str, list[object]]]:
    """Per task, the x/y/text lists of line segments ``[start, end]`` separated by None (one trace per task).

    ``windows``: ``sample_windows`` rows (started_at, latency_s, task, doc_id, error).
    """
    out: dict[str, dict[str, list[object]]] = {}
    for row in windows.to_dict("records"):
        start = pd.Timestamp(row["started_at"])
        latency = float(row["latency_s"])
        end = start + timedelta(seconds=latency)
        task = str(row["task"])
        label = f"{task} #{row['doc_id']}: {latency:.3f} s" + (" (error)" if row.get("error") else "")
        seg = out.setdefault(task, {"x": [], "y": [], "text": []})
        seg["x"] += [start, end, None]
        seg["y"] += [task, task, None]
        seg["text"] += [label, label, None]
    return out


def run_timeline(series: Mapping[str, tuple[pd.DataFrame, str]], windows: pd.DataFrame) -> go.Figure:
    """A run's metrics (one row each) above its samples' time windows, on one shared time axis.

    ``series``: metric -> (``telemetry_series`` rows, unit). Each sample is a
    horizontal segment from its start to start + latency on its task's row, so a
    spike in the telemetry lines up with the samples that ran during it.
    """
    rows, segments = len(series) + 1, sample_segments(windows)
    heights = [1.0] * len(series) + [max(0.6, 0.25 * max(1, windows["task"].nunique() if not windows.empty else 1))]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                        subplot_titles=[f"{m} ({u})" for m, (_, u) in series.items()] + ["samples"])  # fmt: skip
    for i, (metric, (frame, _)) in enumerate(series.items(), start=1):
        if not frame.empty:
            for trace in _band_traces(frame, metric, showlegend=False):
                fig.add_trace(trace, row=i, col=1)
    for task, seg in segments.items():
        fig.add_trace(
            go.Scatter(x=seg["x"], y=seg["y"], text=seg["text"], mode="lines+markers", name=task,
                       line={"width": 6}, marker={"size": 4}, hovertemplate="%{text}<extra></extra>",
                       showlegend=False),
            row=rows, col=1,
        )  # fmt: skip
    fig.update_layout(height=180 * len(series) + 60 + 40 * max(1, len(segments)),
                      margin={"l": 40, "r": 10, "t": 30, "b": 28}, showlegend=False)  # fmt: skip
    fig.update_yaxes(type="category", row=rows, col=1)
    return fig
