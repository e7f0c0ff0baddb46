"""Pure Plotly figures of the Overview page: KPI sparklines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

__all__ = ["SPARK_HEIGHT", "sparkline"]

#: Pixel height of a sparkline under its KPI.
SPARK_HEIGHT = 70


def sparkline(x: Iterable[Any], y: Iterable[float | None], *, name: str, color: str = "#1f77b4",
              bars: bool = False, y_format: str = ".3g") -> go.Figure:  # fmt: skip
    """A small axis-free trend of ``y`` over ``x`` (bars for counts, a filled line for levels).

    Empty input gives an empty (still small) figure; the hover shows each point's x and value.
    """
    hover = f"%{{x}}<br>{name}: %{{y:{y_format}}}<extra></extra>"
    trace: go.Bar | go.Scatter
    if bars:
        trace = go.Bar(x=list(x), y=list(y), marker_color=color, name=name, hovertemplate=hover)
    else:
        trace = go.Scatter(x=list(x), y=list(y), mode="lines", line={"color": color, "width": 2}, fill="tozeroy",
                           name=name, hovertemplate=hover, connectgaps=False)  # fmt: skip
    fig = go.Figure(trace)
    fig.update_layout(
        height=SPARK_HEIGHT, margin={"l": 0, "r": 0, "t": 0, "b": 0}, showlegend=False,
        xaxis={"visible": False}, yaxis={"visible": False, "rangemode": "tozero"},
        bargap=0.15, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )  # fmt: skip
    return fig
