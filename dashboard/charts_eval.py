"""Chart builders of the Evaluations page: pure functions, plotly Figure out (no Streamlit)."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from gemmawatch.dashboard.charts import empty_figure

__all__ = ["CHANGE_COLOURS", "change_bars"]

#: Bad news red, good news green, the rest grey.
CHANGE_COLOURS = {"right → wrong": "#d62728", "worse score": "#ff9896", "wrong → right": "#2ca02c",
                  "better score": "#98df8a"}  # fmt: skip


def change_bars(counts: Mapping[str, int]) -> go.Figure:
    """Horizontal bars: how many paired items made each change (``eval_tables.flip_counts``), in its order."""
    if not counts:
        return empty_figure()
    names = list(counts)
    fig = go.Figure(
        go.Bar(
            x=[counts[n] for n in names],
            y=names,
            orientation="h",
            marker_color=[CHANGE_COLOURS.get(n, "#7f7f7f") for n in names],
            hovertemplate="%{y}: %{x} items<extra></extra>",
        )
    )
    fig.update_layout(
        height=60 + 36 * len(names),
        yaxis={"autorange": "reversed"},
        xaxis={"title": "paired items"},
        margin={"l": 120, "r": 20, "t": 10, "b": 40},
    )
    return fig
