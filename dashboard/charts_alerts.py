"""Chart builder of the Alerts page: one alert's values over its history (pure: frame in, figure out)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from gemmawatch.dashboard.charts import empty_figure

__all__ = ["STATE_COLOURS", "alert_history"]

#: Marker colour per event; acknowledgements and silences are grey (no state change).
STATE_COLOURS = {"pending": "#f5a623", "firing": "#d0021b", "resolved": "#2e7d32"}
_OTHER = "#8c8c8c"


def alert_history(events: pd.DataFrame, *, threshold: float | None = None, comparator: str | None = None) -> go.Figure:
    """The value of each event of an alert over time, markers coloured by the state it moved to.

    ``events`` is :func:`gemmawatch.dashboard.alert_tables.events_frame` output
    (``at``, ``state``, ``value``, ``change``). ``threshold`` (with its
    ``comparator``) is drawn as a dashed line, so the reader sees how far past it
    each value was. Events without a value are left out.
    """
    if events.empty or not {"at", "state", "value"} <= set(events.columns):
        return empty_figure()
    data = events[pd.to_numeric(events["value"], errors="coerce").notna()]
    if data.empty:
        return empty_figure("No values")
    states = data["state"].astype(str).tolist()
    fig = go.Figure(
        go.Scatter(
            name="value",
            x=data["at"].tolist(),
            y=data["value"].astype(float).tolist(),
            mode="lines+markers",
            line={"color": _OTHER, "shape": "hv"},
            marker={"size": 11, "color": [STATE_COLOURS.get(s, _OTHER) for s in states]},
            customdata=[[c] for c in (data["change"] if "change" in data.columns else data["state"]).astype(str)],
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S} UTC<br>%{customdata[0]}<br>value %{y:.4g}<extra></extra>",
        )
    )
    if threshold is not None:
        fig.add_hline(
            y=float(threshold),
            line={"dash": "dash", "color": STATE_COLOURS["firing"]},
            annotation_text=f"alert when {comparator or ''} {threshold:g}".replace("  ", " "),
        )
    fig.update_layout(
        height=300, showlegend=False, margin={"l": 50, "r": 20, "t": 30, "b": 40}, yaxis_title="value"
    )
    return fig
