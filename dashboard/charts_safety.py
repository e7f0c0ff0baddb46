"""Chart builders of the Safety page: pure functions, DataFrame in, plotly Figure out.

Kept apart from :mod:`gemmawatch.dashboard.charts` (already near the module size
limit); same conventions: no Streamlit, an empty frame gives a "No data" figure,
error bars are 95 % confidence intervals built by :func:`charts.error_bar_arrays`.
"""

from __future__ import annotations

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from gemmawatch.dashboard.charts import empty_figure, error_bar_arrays
from gemmawatch.dashboard.safety_tables import RATE_LABELS

__all__ = ["probe_pass_rates", "safety_rates"]

_PERCENT_AXIS = {"range": [0, 1.05], "tickformat": ".0%"}


def safety_rates(rates: pd.DataFrame) -> go.Figure:
    """Grouped bars of safety rates per category with 95 % CI error bars.

    ``rates`` is :func:`gemmawatch.dashboard.safety_tables.rates_frame` output
    (``category``, ``rate``, ``value``, ``ci_low``, ``ci_high``, ``n``): categories
    on x in frame order (``all`` last there), one colour per rate in the order of
    :data:`~gemmawatch.dashboard.safety_tables.RATE_LABELS`. All rates are shares,
    so they share one 0-100 % axis.
    """
    if rates.empty or not {"category", "rate", "value"} <= set(rates.columns):
        return empty_figure()
    palette = list(plotly.colors.qualitative.Plotly)
    known = list(RATE_LABELS.values())
    names = sorted(dict.fromkeys(rates["rate"].astype(str)), key=lambda r: known.index(r) if r in known else len(known))
    fig = go.Figure()
    for i, rate in enumerate(names):
        part = rates[rates["rate"].astype(str) == rate]
        minus, plus = error_bar_arrays(part)
        ns = part["n"].tolist() if "n" in part.columns else [None] * len(part)
        fig.add_trace(
            go.Bar(
                name=rate,
                x=part["category"].astype(str).tolist(),
                y=part["value"].astype(float).tolist(),
                error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                marker_color=palette[i % len(palette)],
                customdata=[[n] for n in ns],
                hovertemplate="%{x}<br>%{y:.1%}<br>n=%{customdata[0]}<extra>" + rate + "</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=420,
        yaxis={**_PERCENT_AXIS, "title": "share of prompts"},
        # Categories as in the frame: plotly would otherwise order them by first appearance per trace.
        xaxis={"categoryorder": "array", "categoryarray": list(dict.fromkeys(rates["category"].astype(str)))},
        margin={"l": 50, "r": 20, "t": 30, "b": 80},
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
    )
    return fig


def probe_pass_rates(probes: pd.DataFrame, *, metric: str | None = None) -> go.Figure:
    """Horizontal bars of per-probe pass rates with 95 % CI error bars (``all`` probes last, at the bottom).

    ``probes`` is :func:`gemmawatch.dashboard.safety_tables.probe_frame` output;
    only the rows over all detectors are drawn, of ``metric`` (default: the first
    metric in the frame).
    """
    if probes.empty or not {"probe", "detector", "metric", "value"} <= set(probes.columns):
        return empty_figure()
    chosen = metric or str(probes["metric"].iloc[0])
    part = probes[(probes["detector"] == "all") & (probes["metric"] == chosen)]
    if part.empty:
        return empty_figure()
    minus, plus = error_bar_arrays(part)
    ns = part["n"].tolist() if "n" in part.columns else [None] * len(part)
    names = part["probe"].astype(str).tolist()
    fig = go.Figure(
        go.Bar(
            name=chosen,
            orientation="h",
            y=names,
            x=part["value"].astype(float).tolist(),
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
            customdata=[[n] for n in ns],
            hovertemplate="%{y}<br>%{x:.1%}<br>n=%{customdata[0]}<extra>" + chosen + "</extra>",
        )
    )
    fig.update_layout(
        height=max(240, 40 * len(names) + 100),
        xaxis={**_PERCENT_AXIS, "title": chosen},
        # First probe on top, the run-wide "all" row at the bottom.
        yaxis={"autorange": "reversed", "automargin": True},
        margin={"l": 20, "r": 20, "t": 30, "b": 50},
        showlegend=False,
    )
    return fig
