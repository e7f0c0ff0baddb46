"""Compare page: two or more runs side by side, with CIs, n and deltas against the first.

Scores are only comparable when they were computed the same way, so the page
warns when the runs disagree on producer or task version for a task.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, data, tables, ui

__all__ = ["render"]


def render() -> None:
    """Draw the Compare page."""
    st.title("Compare runs")
    ui.database_caption()
    runs = data.runs()
    if runs.empty:
        ui.empty_state()
        return
    labels = {int(r["id"]): tables.run_label(r) for r in runs.to_dict("records")}
    status = dict(zip(runs["id"].astype(int), runs["status"], strict=True))
    chosen = st.multiselect(
        "Runs (the first is the baseline for Δ)",
        list(labels),
        default=tables.default_compare_runs(runs),
        format_func=lambda i: f"{labels[i]} · {status[i]}",
        key="compare_runs",
    )
    if len(chosen) < 2:
        st.info("Pick at least two runs to compare.")
        return
    metrics = data.metrics(chosen)
    if metrics.empty:
        st.info("The selected runs stored no metrics.")
        return
    _version_warnings(metrics)

    st.subheader("Metrics side by side")
    table = tables.compare_table(metrics, chosen, labels)
    st.dataframe(table, hide_index=True, column_config=_compare_columns(table, chosen, labels))
    st.caption(
        "Columns per run: value, Δ (value minus the baseline's, the first selected run), "
        "95% confidence interval, n (samples behind the value). Hover a header for the run's target."
    )

    order = {run_id: i for i, run_id in enumerate(chosen)}
    ordered = metrics.assign(_order=metrics["run_id"].map(order)).sort_values(["_order", "task"])
    tasks = sorted(ordered["task"].unique())
    picked = st.multiselect("Tasks in the charts", tasks, default=tasks, key="compare_tasks")
    scores, latency = tables.split_latency(ordered[ordered["task"].isin(picked)])
    if not scores.empty:
        st.markdown("**Scores**")
        st.plotly_chart(charts.metric_bars_with_ci(scores), key="compare_scores_chart")
    if not latency.empty:
        st.markdown("**Latency probe**")
        st.plotly_chart(charts.metric_bars_with_ci(latency), key="compare_latency_chart")


def _compare_columns(table: pd.DataFrame, chosen: list[int], labels: dict[int, str]) -> dict[str, Any]:
    # Headers carry only "#id ...": full labels would push the deltas off-screen;
    # the full run label is in each header's tooltip and in the selector above.
    config: dict[str, Any] = {}
    for run_id in chosen:
        label = labels[run_id]
        for suffix, column in (
            ("value", st.column_config.NumberColumn(f"#{run_id}", format="%.4g", help=label)),
            ("Δ", st.column_config.NumberColumn(f"#{run_id} Δ", format="%+.4g", help=f"{label} minus baseline")),
            ("95% CI", st.column_config.TextColumn(f"#{run_id} 95% CI", help=label)),
            ("n", st.column_config.NumberColumn(f"#{run_id} n", format="%d", help=label)),
        ):
            if f"{label} {suffix}" in table.columns:
                config[f"{label} {suffix}"] = column
    return config


def _version_warnings(metrics: pd.DataFrame) -> None:
    columns = [c for c in ("producer", "producer_version", "task_version") if c in metrics.columns]
    if not columns:
        return
    for task, part in metrics.groupby("task"):
        versions = part[columns].astype(str).drop_duplicates()
        if len(versions) > 1:
            st.warning(
                f"Task {task}: the runs used different producers or task versions; compare its scores with care."
            )


if __name__ == "__main__":
    render()
