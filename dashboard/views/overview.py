"""Overview page: is every target up, what is firing, what ran, and where the headline numbers are heading.

Streamlit executes this file as the page script (``__name__ == "__main__"``);
``render`` holds the page so tools can import the module without drawing it.
Every number comes from an SQL aggregate (run counts per status, activity per
day, each target's last probe), so the page costs the same for 10 runs or 10,000.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, charts_overview, data, overview_data, tables, ui

__all__ = ["LATEST_RUNS", "MONITOR_HINT", "render"]

ALERT_COLUMNS = ["rule", "severity", "value", "message", "target", "run_id", "fired_at"]
#: Rows of the latest-runs table (the Run page and `gemmawatch runs list` show the rest).
LATEST_RUNS = 20
#: Shown when no target was probed: the command that fills the health table.
MONITOR_HINT = (
    "No probe results in the last 24 h. Start canary probes with `gemmawatch monitor --config monitor.yaml` "
    "(or `--once` from cron)."
)
_STATUS = {"up": "🟢 up", "down": "🔴 down", "unknown": "⚪ unknown"}
_SPARK_CONFIG = {"displayModeBar": False, "staticPlot": False}


def render() -> None:
    """Draw the Overview page."""
    st.title("gemmawatch")
    ui.database_caption()
    counts = overview_data.status_counts()
    firing = data.alerts("firing")
    health = overview_data.target_health()

    _kpis(counts, firing, health)
    _health_section(health)
    if not sum(counts.values()):
        ui.empty_state()
        return

    runs = data.runs(limit=LATEST_RUNS)
    st.subheader("Latest runs")
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
        st.switch_page("views/run.py", query_params={"run": str(run_id)})

    _alerts_section(firing)
    _latest_scores(runs)


def _kpis(counts: dict[str, int], firing: pd.DataFrame, health: pd.DataFrame) -> None:
    daily = overview_data.activity()
    days = daily["day"]
    probed = health[health["probes"] > 0] if not health.empty else health
    n_probes = int(probed["probes"].sum()) if not probed.empty else 0
    uptime = float((probed["uptime"] * probed["probes"]).sum() / n_probes) if n_probes else None
    uptime_trend = overview_data.probe_trend("probe.up")

    cols = st.columns(5)
    cols[0].metric("Runs", sum(counts.values()))
    cols[1].metric("Completed", counts.get("completed", 0))
    cols[2].metric("Failed", counts.get("failed", 0) + counts.get("partial", 0))
    cols[3].metric("Firing alerts", len(firing), border=not firing.empty)
    cols[4].metric("Probe uptime (24 h)", f"{uptime:.1%}" if uptime is not None else "-",
                   help=f"Share of answered canary probes, {n_probes} probes of all targets.")  # fmt: skip
    # Count trends once anything ran (an empty database draws no charts, only how to fill it).
    sparks = [] if not sum(counts.values()) else [
        (0, charts_overview.sparkline(days, daily["runs"], name="runs", bars=True), "runs per day"),
        (2, charts_overview.sparkline(days, daily["failed"], name="failed", color="#d62728", bars=True),
         "failed per day"),
        (3, charts_overview.sparkline(days, daily["alerts"], name="alerts fired", color="#ff7f0e", bars=True),
         "alerts fired per day"),
    ]  # fmt: skip
    if not uptime_trend.empty and n_probes:
        trend = charts_overview.sparkline(uptime_trend["ts"], uptime_trend["avg"], name="uptime", color="#2ca02c",
                                          y_format=".1%")  # fmt: skip
        sparks.append((4, trend, "uptime"))
    for col, figure, what in sparks:
        with cols[col]:
            st.plotly_chart(figure, key=f"overview_spark_{col}", config=_SPARK_CONFIG)
            st.caption(f"{what}, last {overview_data.TREND_DAYS} days")


def _health_section(health: pd.DataFrame) -> None:
    st.subheader("Target health")
    probed = health[health["probes"] > 0] if not health.empty else health
    if probed.empty:
        st.info(MONITOR_HINT)
        if health.empty:
            return
    shown = health.assign(status=health["status"].map(_STATUS))
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "last probe": st.column_config.DatetimeColumn("last probe (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "uptime": st.column_config.NumberColumn("uptime (24 h)", format="percent"),
            "last E2E (s)": st.column_config.NumberColumn("last E2E (s)", format="%.3f"),
        },
        key="overview_health",
    )
    st.caption(
        "Status from each target's last canary probe; unknown when none came in the last three probe intervals "
        "(at least 2 min)."
    )


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
