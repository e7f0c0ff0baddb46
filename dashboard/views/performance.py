"""Performance page: load-test runs (``gemmawatch bench load``) side by side.

Per step of each chosen run: throughput, TTFT/TPOT/E2E percentiles and goodput
with 95 % CIs and n; the throughput-latency curve of every run with its knee
starred; where each sweep saturated; and the TTFT/E2E distributions of the
requests themselves. Stored strings (targets, labels, the knee's reason) reach
the page only as dataframe cells or ``st.text``, never as markdown or HTML.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, data, load_tables, ui

__all__ = ["EMPTY_STATE", "render"]

#: Shown when the database holds no load run: the command that fills this page.
EMPTY_STATE = (
    "No load-test runs yet. Measure a server with "
    "`gemmawatch bench load --target T --profile sweep --steps 5 --max-requests 50` "
    "(T: a target name or openai:MODEL@URL)."
)

#: Default number of runs drawn together (the latest load run of each target).
DEFAULT_RUNS = 4

_ALL_STEPS = "Every step"
_KNEE_STEP = "Knee step of each run (else its highest-throughput step)"


def render() -> None:
    """Draw the Performance page."""
    st.title("Performance")
    ui.database_caption()
    runs = data.load_runs()
    if runs.empty:
        st.info(EMPTY_STATE)
        return
    chosen = _select_runs(runs)
    if not chosen:
        st.info("Pick at least one load run.")
        return
    labels = dict(zip(runs["id"].astype(int), runs["run_label"], strict=True))
    steps = pd.concat([data.load_steps(run_id, labels[run_id]) for run_id in chosen], ignore_index=True)
    saturation = {labels[run_id]: data.run_saturation(run_id) for run_id in chosen}

    st.subheader("Steps")
    if steps.empty:
        st.info("The selected runs stored no load metrics (interrupted before the first step finished?).")
    else:
        _steps_table(steps)

    st.subheader("Throughput vs latency")
    latency = st.selectbox(
        "Latency",
        list(load_tables.LATENCY_METRICS),
        format_func=lambda m: load_tables.LATENCY_METRICS[m],
        key="performance_latency",
    )
    figure = charts.throughput_latency_curve(
        steps,
        latency=latency,
        knees=load_tables.knee_steps(saturation),
        latency_label=load_tables.LATENCY_METRICS[latency],
    )
    st.plotly_chart(figure, key="performance_curve")
    st.caption(
        "One line per run, points in increasing load; error bars are 95% confidence intervals. "
        "A star marks the knee: the last step before throughput stopped rising while latency climbed."
    )
    for run_id in chosen:
        label = labels[run_id]
        st.text(load_tables.saturation_sentence(label, saturation[label], steps[steps["run_id"] == run_id]))

    _distributions(chosen, labels, steps, saturation)


def _select_runs(runs: pd.DataFrame) -> list[int]:
    options = {
        int(r["id"]): f"{r['run_label']} · {r['profile'] or '-'} · {r['status']}" for r in runs.to_dict("records")
    }
    picked = st.multiselect(
        "Load runs",
        list(options),
        default=load_tables.default_load_runs(runs, max_runs=DEFAULT_RUNS),
        format_func=lambda i: options[i],
        key="performance_runs",
    )
    return [int(i) for i in picked]


def _steps_table(steps: pd.DataFrame) -> None:
    table = load_tables.step_table(steps)
    config: dict[str, Any] = {
        "run": st.column_config.TextColumn("run", pinned=True),
        "step": st.column_config.NumberColumn("step", format="%d", width="small"),
        "done": st.column_config.NumberColumn("done", format="%d", help="Completed requests in the window"),
        "failed": st.column_config.NumberColumn("failed", format="%d", help="Failed requests in the window"),
    }
    for label in load_tables.STEP_METRICS.values():
        config[label] = st.column_config.NumberColumn(label, format="%.4g")
        config[f"{label} n"] = st.column_config.NumberColumn(f"{label} n", format="%d")
    st.dataframe(table, hide_index=True, column_config=config)
    st.caption(
        "Figures of each step's measurement window (vLLM benchmark_serving definitions): n is the number of "
        "requests behind each value; 95% CIs are exact Poisson intervals for request rates and bootstrap "
        "intervals for token rates and percentiles. Goodput appears when the run was given an SLO (--slo)."
    )


def _distributions(chosen: list[int], labels: dict[int, str], steps: pd.DataFrame, saturation: dict[str, Any]) -> None:
    st.subheader("Latency distributions")
    which = st.radio("Requests of", [_ALL_STEPS, _KNEE_STEP], horizontal=True, key="performance_steps")
    log_x = st.checkbox("Logarithmic latency axis", key="performance_log_x")
    frames, drawn, stored = [], 0, 0
    for run_id in chosen:
        timings = data.request_timings(run_id)
        summary = data.run_summary(run_id) or {}
        stored += int(summary.get("load_requests_count") or 0)
        drawn += len(timings)
        if which == _KNEE_STEP and not timings.empty:
            timings = timings[
                timings["step"] == _focus_step(steps[steps["run_id"] == run_id], saturation[labels[run_id]])
            ]
        frames.append(load_tables.measured_ok(timings).assign(run_label=labels[run_id]))
    requests = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    panels = (
        ("ttft_s", "Time to first token", "TTFT"),
        ("tpot_s", "Time per output token (excl. the first)", "TPOT"),
        ("e2e_s", "End-to-end latency", "E2E"),
    )
    for col, (column, title, x_title) in zip(st.columns(len(panels)), panels, strict=True):
        with col:
            st.plotly_chart(
                charts.latency_ecdf(requests, column=column, title=title, x_title=x_title, log_x=log_x),
                key=f"performance_{column.removesuffix('_s')}_ecdf",
            )
    thinned = f" (thinned evenly from {stored} stored)" if drawn < stored else ""
    st.caption(
        f"Successful requests of the measurement window; {drawn} requests read{thinned}. "
        "Dotted lines: p50, p95 and p99 (linear interpolation, as vLLM reports them)."
    )


def _focus_step(steps: pd.DataFrame, saturation: dict[str, Any] | None) -> int:
    """The knee step of a run, else its highest-throughput step (the only step of a single-step run)."""
    knee = load_tables.knee_steps({"run": saturation}).get("run")
    if knee is not None:
        return knee
    if steps.empty:
        return 0
    best = steps.sort_values(["request_throughput", "step"], ascending=[False, True], na_position="last")
    return int(best["step"].iloc[0])


if __name__ == "__main__":
    render()
