"""Compare variants: two or more runs (or the latest run of two or more targets) against a baseline.

* metric table: each run's stored value with 95 % CI and n, and per candidate the paired delta
  against the baseline (``gemmawatch compare BASE CAND``: items paired by task and doc id,
  McNemar / paired bootstrap, Benjamini-Hochberg adjusted) with significance marks;
* grouped bars with 95 % CI error bars;
* accuracy vs latency / memory / tokens-per-second with the Pareto front marked;
* quality, safety and performance of the same targets side by side.

Scores are only comparable when they were computed the same way, so the page warns when the
runs disagree on producer or task version for a task.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, charts_compare, compare_tables, data, tables, ui

__all__ = ["NEED_TWO", "render"]

NEED_TWO = "Pick at least two runs to compare."
BY_RUNS, BY_TARGETS = "Runs", "Targets (latest run of each)"
SIG_HELP = "sig.: * BH-adjusted p < 0.05, ** < 0.01, *** < 0.001 (paired test of `gemmawatch compare`)"


def render() -> None:
    """Draw the Compare page."""
    st.title("Compare variants")
    ui.database_caption()
    runs = data.runs()
    if runs.empty:
        ui.empty_state()
        return
    labels = {int(r["id"]): tables.run_label(r) for r in runs.to_dict("records")}
    chosen = _choose_runs(runs, labels)
    if len(chosen) < 2:
        st.info(NEED_TWO)
        return
    baseline = int(
        st.selectbox("Baseline (Δ and tests against it)", chosen, format_func=lambda i: labels[i], key="compare_base")
    )
    ordered = [baseline, *(r for r in chosen if r != baseline)]
    metrics = data.metrics(ordered)
    if metrics.empty:
        st.info("The selected runs stored no metrics.")
        return
    _version_warnings(metrics)
    _metric_table(metrics, ordered, labels)
    _bars(metrics, ordered)
    quality = _pareto_section(metrics, ordered, labels)
    _side_by_side(runs, ordered, quality)


def _choose_runs(runs: pd.DataFrame, labels: dict[int, str]) -> list[int]:
    mode = st.radio("Compare", [BY_RUNS, BY_TARGETS], horizontal=True, key="compare_mode")
    if mode == BY_RUNS:
        status = dict(zip(runs["id"].astype(int), runs["status"], strict=True))
        return [
            int(i)
            for i in st.multiselect(
                "Runs",
                list(labels),
                default=compare_tables.default_runs(runs),
                format_func=lambda i: f"{labels[i]} · {status[i]}",
                key="compare_runs",
            )
        ]
    kinds = sorted(str(k) for k in runs["kind"].dropna().unique())
    cols = st.columns([1, 3])
    kind = cols[0].selectbox("Run kind", kinds, index=kinds.index("eval") if "eval" in kinds else 0, key="compare_kind")
    names = sorted(str(t) for t in runs.loc[runs["kind"] == kind, "target"].dropna().unique())
    # One widget per kind: its targets differ, and a fresh widget starts with all of them chosen.
    targets = cols[1].multiselect("Targets", names, default=names, key=f"compare_targets_{kind}")
    chosen = compare_tables.latest_runs(runs, targets, kind)
    if len(chosen) < len(targets):
        st.caption("Targets without a completed run of this kind are left out.")
    return chosen


def _metric_table(metrics: pd.DataFrame, ordered: list[int], labels: dict[int, str]) -> None:
    st.subheader("Metrics side by side")
    base = ordered[0]
    comparisons = {cand: data.comparison(base, cand) for cand in ordered[1:]}
    for cand, result in comparisons.items():
        if "error" in result:
            st.warning(f"{labels[cand]} vs {labels[base]}: no paired deltas. {result['error']}")
    table = compare_tables.variant_table(metrics, ordered, labels, comparisons)
    st.dataframe(table, hide_index=True, column_config=_columns(table, ordered, labels), key="compare_table")
    ui.export_buttons(table, "compare_variants")
    st.caption(
        "Per run: the stored value, its 95% confidence interval and n. Per candidate: Δ = paired difference "
        "from the baseline over the items both runs answered (task and doc id), with its 95% CI; "
        f"{SIG_HELP}, adjusted within each candidate's comparison. Latency rows have no per-item pairs: Δ "
        "without a test. Hover a header for the run's target."
    )


def _columns(table: pd.DataFrame, ordered: list[int], labels: dict[int, str]) -> dict[str, Any]:
    # Headers carry only "#id ...": full labels would push the deltas off-screen.
    config: dict[str, Any] = {}
    for run_id in ordered:
        label = labels[run_id]
        for suffix, column in (
            ("value", st.column_config.NumberColumn(f"#{run_id}", format="%.4g", help=label)),
            ("95% CI", st.column_config.TextColumn(f"#{run_id} 95% CI", help=label)),
            ("n", st.column_config.NumberColumn(f"#{run_id} n", format="%d", help=label)),
            ("Δ", st.column_config.NumberColumn(f"#{run_id} Δ", format="%+.4g", help=f"{label}: paired Δ")),
            ("Δ 95% CI", st.column_config.TextColumn(f"#{run_id} Δ 95% CI", help=label)),
            ("sig.", st.column_config.TextColumn(f"#{run_id} sig.", help=SIG_HELP)),
        ):
            if f"{label} {suffix}" in table.columns:
                config[f"{label} {suffix}"] = column
    return config


def _bars(metrics: pd.DataFrame, ordered: list[int]) -> None:
    order = {run_id: i for i, run_id in enumerate(ordered)}
    frame = metrics.assign(_order=metrics["run_id"].map(order)).sort_values(["_order", "task"])
    tasks = sorted(frame["task"].unique())
    picked = st.multiselect("Tasks in the charts", tasks, default=tasks, key="compare_tasks")
    scores, latency = tables.split_latency(frame[frame["task"].isin(picked)])
    if not scores.empty:
        st.markdown("**Scores** (error bars: 95% CI)")
        st.plotly_chart(charts.metric_bars_with_ci(scores), key="compare_scores_chart")
    if not latency.empty:
        st.markdown("**Latency probe**")
        st.plotly_chart(charts.metric_bars_with_ci(latency), key="compare_latency_chart")


def _pareto_section(metrics: pd.DataFrame, ordered: list[int], labels: dict[int, str]) -> tuple[str, str, str] | None:
    st.subheader("Accuracy vs cost")
    keys = compare_tables.quality_keys(metrics)
    if not keys:
        st.info("The selected runs stored no quality metric to put on the y axis.")
        return None
    cols = st.columns([2, 2])
    quality = cols[0].selectbox(
        "Quality (y)",
        keys,
        index=compare_tables.default_quality(metrics, keys),
        format_func=lambda k: f"{k[0]} / {charts.metric_key(k[1], k[2])}",
        key="compare_quality",
    )
    axis_key = cols[1].radio(
        "Cost (x)",
        list(compare_tables.COST_AXES),
        format_func=lambda k: compare_tables.COST_AXES[k].label,
        horizontal=True,
        key="compare_axis",
    )
    axis = compare_tables.COST_AXES[axis_key]
    memory: dict[int, float | None] = {}
    sources: set[str] = set()
    for run_id in ordered:
        memory[run_id], source = compare_tables.peak_memory(data.telemetry_summary(run_id))
        if source:
            sources.add(source)
    frame = compare_tables.cost_frame(metrics, ordered, labels, memory, quality)
    higher = _higher_is_better(metrics, quality)
    label = f"{quality[0]} / {charts.metric_key(quality[1], quality[2])}"
    st.plotly_chart(
        charts_compare.pareto_scatter(frame, axis, y_label=label, y_higher_is_better=higher), key="compare_pareto"
    )
    missing = frame[frame[[axis.column, "quality"]].isna().any(axis=1)]["run_label"].tolist()
    notes = [
        "Stars: the Pareto front, the variants no other variant beats on both axes (the deployment candidates). "
        "Error bars: 95% CI of the quality metric. Latency and tokens/s come from each run's latency probe "
        "(`gemmawatch eval` stores it); memory is the highest telemetry reading "
        f"({', '.join(sorted(sources)) or 'none recorded'})."
    ]
    if missing:
        notes.append(f"Not drawn (a value is missing): {', '.join(missing)}.")
    st.caption(" ".join(notes))
    return (str(quality[0]), str(quality[1]), str(quality[2]))


def _higher_is_better(metrics: pd.DataFrame, quality: tuple[str, str, str]) -> bool:
    from gemmawatch.compare import KNOWN_HIGHER_IS_BETTER

    rows = metrics[(metrics["task"] == quality[0]) & (metrics["metric"] == quality[1])]
    stored = rows["higher_is_better"].dropna().tolist() if "higher_is_better" in rows.columns else []
    if stored:
        return bool(stored[0])
    return KNOWN_HIGHER_IS_BETTER.get(quality[1]) is not False


def _side_by_side(runs: pd.DataFrame, ordered: list[int], quality: tuple[str, str, str] | None) -> None:
    st.subheader("Quality, safety and performance side by side")
    target_of = {int(i): t for i, t in zip(runs["id"], runs["target"], strict=True) if isinstance(t, str)}
    targets = list(dict.fromkeys(target_of[r] for r in ordered if r in target_of))
    if not targets:
        st.info("The selected runs have no target.")
        return
    latest = compare_tables.latest_by_kind(runs, targets)
    ids = sorted({run_id for families in latest.values() for run_id in families.values()})
    metrics = data.metrics(ids) if ids else pd.DataFrame()
    loads = [f["load"] for f in latest.values() if "load" in f]
    peaks = {run_id: compare_tables.peak_throughput(data.load_steps(run_id)) for run_id in loads}
    table = compare_tables.side_by_side(latest, metrics, peaks, quality)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "quality": st.column_config.NumberColumn("quality", format="%.4g"),
            "refusal": st.column_config.NumberColumn("refusal", format="percent"),
            "unsafe output": st.column_config.NumberColumn("unsafe output", format="percent"),
            "latency p50 (s)": st.column_config.NumberColumn("latency p50 (s)", format="%.3g"),
            "tokens/s": st.column_config.NumberColumn("tokens/s", format="%.3g"),
            "peak output tok/s": st.column_config.NumberColumn("peak output tok/s", format="%.3g"),
        },
        key="compare_side_by_side",
    )
    named = f"quality = {quality[0]} / {charts.metric_key(quality[1], quality[2])}. " if quality else ""
    st.caption(
        named + "The latest completed run of each target per family: quality (`gemmawatch eval`), safety "
        "(`gemmawatch safety`: rates over all categories) and load (`gemmawatch bench load`: highest output "
        "throughput of any step). An empty cell: no such run for that target yet."
    )


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
