"""Gemma catalog page: the family matrix and selection guide (documented facts, each with its source)
next to what gemmawatch has measured for the targets that are builds of each variant."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import catalog_data, charts, charts_compare, compare_tables, data, gemma_catalog, ui

__all__ = ["render"]


def render() -> None:
    """Draw the Gemma catalog page."""
    st.title("Gemma catalog")
    ui.database_caption()
    st.subheader("Family matrix and selection guide")
    st.dataframe(
        gemma_catalog.matrix_frame().drop(columns=["sources"]),
        hide_index=True,
        column_config={"choose it for": st.column_config.TextColumn("choose it for", width="large")},
        key="catalog_matrix",
    )
    # Static text written here (never user data), so markdown links are safe.
    st.caption("Documented by Google, not measured here. Sources: " + " · ".join(gemma_catalog.SOURCES))
    _measured_section()


def _measured_section() -> None:
    st.subheader("Measured here")
    targets = catalog_data.targets()
    runs = data.runs()
    names = [str(t["name"]) for t in targets if gemma_catalog.match_variant(t.get("model_id"), t.get("name"))]
    latest = compare_tables.latest_by_kind(runs, names)
    ids = sorted({run_id for families in latest.values() for run_id in families.values()})
    metrics = data.metrics(ids) if ids else pd.DataFrame()
    quality_rows = (
        metrics[metrics["run_id"].isin([f["quality"] for f in latest.values() if "quality" in f])] if ids else metrics
    )
    keys = compare_tables.quality_keys(quality_rows)
    quality = keys[compare_tables.default_quality(quality_rows, keys)] if keys else None
    memory: dict[str, float | None] = {}
    peaks: dict[int, float | None] = {}
    for target, families in latest.items():
        if "quality" in families:
            memory[target] = compare_tables.peak_memory(data.telemetry_summary(families["quality"]))[0]
        if "load" in families:
            peaks[families["load"]] = compare_tables.peak_throughput(data.load_steps(families["load"]))
    side = compare_tables.side_by_side(latest, metrics, peaks, quality) if latest else pd.DataFrame()
    table = gemma_catalog.measured_frame(targets, side, memory)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "quality": st.column_config.NumberColumn("quality", format="%.4g"),
            "refusal": st.column_config.NumberColumn("refusal", format="percent"),
            "unsafe output": st.column_config.NumberColumn("unsafe output", format="percent"),
            "latency p50 (s)": st.column_config.NumberColumn("latency p50 (s)", format="%.3g"),
            "tokens/s": st.column_config.NumberColumn("tokens/s", format="%.3g"),
            "peak memory (MB)": st.column_config.NumberColumn("peak memory (MB)", format="%.0f"),
            "command": st.column_config.TextColumn("command to measure", width="large"),
        },
        key="catalog_measured",
    )
    named = f"quality = {quality[0]} / {charts.metric_key(quality[1], quality[2])}; " if quality else ""
    st.caption(
        named + "targets are matched to a variant by model id or name (e.g. `google/gemma-3-4b-it`, `gemma3:4b`, "
        "a `gemma-3-4b-it-Q4_K_M.gguf` file); each shows its latest completed quality, safety and load runs. "
        "'not measured yet': run the command shown (`gemmawatch safety --target T` adds the safety columns)."
    )
    if not names:
        st.info(ui.EMPTY_STATE)
        return
    _measured_chart(table, quality)


def _measured_chart(table: pd.DataFrame, quality: tuple[str, str, str] | None) -> None:
    # The measured targets on one picture: quality against latency, Pareto front marked.
    if quality is None or "quality" not in table.columns or "latency p50 (s)" not in table.columns:
        return
    points = table[table["status"] == "measured"]
    frame = pd.DataFrame(
        {
            "run_label": points["target"].astype(str),
            "latency_p50_s": pd.to_numeric(points["latency p50 (s)"], errors="coerce"),
            "quality": pd.to_numeric(points["quality"], errors="coerce"),
            "quality_ci_low": float("nan"),
            "quality_ci_high": float("nan"),
        }
    )
    label = f"{quality[0]} / {charts.metric_key(quality[1], quality[2])}"
    st.plotly_chart(
        charts_compare.pareto_scatter(frame, compare_tables.COST_AXES["latency"], y_label=label),
        key="catalog_measured_chart",
    )


if __name__ == "__main__":
    render()
