"""Chart builders of the Compare page: pure functions, DataFrame in, plotly Figure out.

Same conventions as :mod:`gemmawatch.dashboard.charts`: no Streamlit, an empty frame
gives a "No data" figure, error bars are 95 % confidence intervals.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from gemmawatch.dashboard.charts import empty_figure
from gemmawatch.dashboard.compare_tables import CostAxis, pareto_front

__all__ = ["FRONT_NAME", "OTHER_NAME", "pareto_scatter"]

FRONT_NAME = "Pareto front"
OTHER_NAME = "dominated"


def pareto_scatter(frame: pd.DataFrame, axis: CostAxis, *, y_label: str, y_higher_is_better: bool = True) -> go.Figure:
    """Quality (y, with its 95 % CI) against one cost axis (x), the Pareto-optimal variants marked and joined.

    ``frame`` is :func:`gemmawatch.dashboard.compare_tables.cost_frame` output. Variants lacking
    either coordinate are left out (the page says which). The front is
    :func:`~gemmawatch.dashboard.compare_tables.pareto_front` with each axis's own direction:
    the variants worth deploying; a dominated variant is worse on one axis and no better on the other.
    """
    if frame.empty or axis.column not in frame.columns or "quality" not in frame.columns:
        return empty_figure()
    data = frame.dropna(subset=[axis.column, "quality"])
    if data.empty:
        return empty_figure("No variant has both values")
    on_front = pareto_front(
        list(zip(data[axis.column], data["quality"], strict=True)),
        x_higher_is_better=axis.higher_is_better,
        y_higher_is_better=y_higher_is_better,
    )
    data = data.assign(_front=on_front)
    fig = go.Figure()
    front = data[data["_front"]].sort_values(axis.column)
    if len(front) > 1:
        fig.add_trace(
            go.Scatter(
                x=front[axis.column].tolist(),
                y=front["quality"].tolist(),
                mode="lines",
                line={"dash": "dot", "color": "#2ca02c"},
                name="front",
                showlegend=False,
                hoverinfo="skip",
            )
        )
    for name, part, colour, symbol in (
        (FRONT_NAME, data[data["_front"]], "#2ca02c", "star"),
        (OTHER_NAME, data[~data["_front"]], "#7f7f7f", "circle"),
    ):
        if part.empty:
            continue
        low = (part["quality"] - part["quality_ci_low"]).clip(lower=0).fillna(0.0)
        high = (part["quality_ci_high"] - part["quality"]).clip(lower=0).fillna(0.0)
        fig.add_trace(
            go.Scatter(
                x=part[axis.column].tolist(),
                y=part["quality"].tolist(),
                mode="markers+text",
                name=name,
                text=part["run_label"].astype(str).tolist(),
                textposition="top center",
                marker={"size": 14, "color": colour, "symbol": symbol},
                error_y={"type": "data", "symmetric": False, "array": high.tolist(), "arrayminus": low.tolist()},
                hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra>" + name + "</extra>",
            )
        )
    better_x = "higher is better" if axis.higher_is_better else "lower is better"
    better_y = "higher is better" if y_higher_is_better else "lower is better"
    fig.update_layout(
        height=460,
        xaxis={"title": f"{axis.label} ({better_x})"},
        yaxis={"title": f"{y_label} ({better_y})"},
        margin={"l": 60, "r": 20, "t": 30, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return fig
