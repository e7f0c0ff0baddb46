"""Overview page: what ran, what is failing, what is firing.

Streamlit executes this file as the page script (``__name__ == "__main__"``);
``render`` holds the page so tools can import the module without drawing it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, data, tables, ui

__all__ = ["render"]

ALERT_COLUMNS = ["rule", "severity", "value", "message", "target", "run_id", "fired_at"]


def render() -> None:
    """Draw the Overview page."""
    st.title("gemmawatch")
    ui.database_caption()
    runs = data.runs()
    firing = data.alerts("firing")

    _kpis(runs, firing)
    if runs.empty:
        ui.empty_state()
        return

    st.subheader("Runs")
    st.caption("Select a row to open the run.")
    selection = st.dataframe(
        runs,
        hide_index=True,
        column_config=ui.RUN_COLUMN_CONFIG,
        on_select="rerun",
        selection_mode="single-row",
        key="overview_runs",
    )
    rows = _selected_rows(selection)
    if rows:
        run_id = int(runs.iloc[rows[0]]["id"])
        st.switch_page("pages/run.py", query_params={"run": str(run_id)})

    _alerts_section(firing)
    _latest_scores(runs)


def _kpis(runs: pd.DataFrame, firing: pd.DataFrame) -> None:
    status = runs["status"] if not runs.empty else pd.Series(dtype=str)
    cols = st.columns(4)
    cols[0].metric("Runs", len(runs))
    cols[1].metric("Completed", int((status == "completed").sum()))
    cols[2].metric("Failed", int(status.isin(["failed", "partial"]).sum()))
    cols[3].metric("Firing alerts", len(firing), border=not firing.empty)


def _selected_rows(selection: object) -> list[int]:
    # st.dataframe returns a DataframeState (dict-like) when on_select is set.
    try:
        return list(selection["selection"]["rows"])  # type: ignore[index]
    except (KeyError, TypeError):
        return []


def _alerts_section(firing: pd.DataFrame) -> None:
    st.subheader("Firing alerts")
    if firing.empty:
        st.success("No alert is firing.")
        return
    shown = firing[[c for c in ALERT_COLUMNS if c in firing.columns]]
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "value": st.column_config.NumberColumn("value", format="%.4g"),
            "fired_at": st.column_config.DatetimeColumn("fired at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "run_id": st.column_config.NumberColumn("run", format="%d"),
            "message": st.column_config.TextColumn("message", width="large"),
        },
    )


def _latest_scores(runs: pd.DataFrame) -> None:
    latest = tables.default_compare_runs(runs)
    if not latest:
        return
    st.subheader("Latest completed run per target")
    metrics = data.metrics(latest)
    if metrics.empty:
        st.info("These runs stored no metrics.")
        return
    # Quality scores only: latency has its own scale and lives on the Run page.
    scores, _ = tables.split_latency(metrics)
    st.plotly_chart(charts.metric_bars_with_ci(scores if not scores.empty else metrics), key="overview_scores")
    st.caption("Error bars: 95% confidence intervals from per-sample scores.")


if __name__ == "__main__":
    render()
