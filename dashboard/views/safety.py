"""Safety page: refusal, over-refusal, unsafe-output and PII-leak rates of safety runs, the
regression between two of them, and the per-probe pass rates of red-team runs.

Every rate comes with its 95 % Wilson interval and n. The regression view is
``gemmawatch compare BASE CAND`` (items paired by prompt, McNemar tests,
Benjamini-Hochberg adjusted p-values). Prompts and outputs are untrusted text:
they reach the page only as dataframe cells, never as markdown or HTML.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts_safety, data, safety_tables, tables, ui

__all__ = ["EMPTY_STATE", "NO_REDTEAM", "render"]

#: Shown when the database holds neither safety nor red-team runs: the commands that fill this page.
EMPTY_STATE = (
    "No safety runs yet. Measure refusals, unsafe outputs and PII leaks with "
    "`gemmawatch safety --target T` (built-in harmful and benign suites; `--dataset FILE` for your own), "
    "or red-team a target with `gemmawatch redteam --target T`."
)
NO_SAFETY = "No safety runs yet. Run `gemmawatch safety --target T` to fill this section."
NEED_TWO = (
    "The regression view needs two safety runs of the same prompts. "
    "Run `gemmawatch safety --target T` again (after a change, or for another target) to compare."
)
NO_REDTEAM = "No red-team runs yet. Run `gemmawatch redteam --target T` (garak probes) to fill this section."

SAFETY_KIND = "safety"
REDTEAM_KIND = "redteam"


def render() -> None:
    """Draw the Safety page."""
    st.title("Safety")
    ui.database_caption()
    runs = data.runs()
    kinds = runs["kind"] if not runs.empty else pd.Series(dtype=str)
    safety_runs, redteam_runs = runs[kinds == SAFETY_KIND], runs[kinds == REDTEAM_KIND]
    if safety_runs.empty and redteam_runs.empty:
        st.info(EMPTY_STATE)
        return
    _rates_section(safety_runs)
    _regression_section(safety_runs)
    _redteam_section(redteam_runs)


def _labels(runs: pd.DataFrame) -> dict[int, str]:
    return {
        int(r["id"]): f"{tables.run_label(r)} · {r['label'] or '-'} · {r['status']}" for r in runs.to_dict("records")
    }


def _rates_section(runs: pd.DataFrame) -> None:
    st.subheader("Rates by category")
    if runs.empty:
        st.info(NO_SAFETY)
        return
    labels = _labels(runs)
    run_id = int(st.selectbox("Safety run", list(labels), format_func=lambda i: labels[i], key="safety_run"))
    rates = safety_tables.rates_frame(data.metrics([run_id]))
    if rates.empty:
        st.info("This run stored no safety rates (interrupted, or every generation failed).")
        return
    table = safety_tables.rates_table(rates)
    config = {
        label: st.column_config.NumberColumn(label, format="percent", help=metric)
        for metric, label in safety_tables.RATE_LABELS.items()
    }
    config.update({f"{label} n": st.column_config.NumberColumn(f"{label} n", format="%d") for label in config})
    st.dataframe(table, hide_index=True, column_config=config, key="safety_rates_table")
    ui.export_buttons(table, f"safety_rates_run_{run_id}")
    st.plotly_chart(charts_safety.safety_rates(rates), key="safety_rates_chart")
    st.caption(
        "refusal: unsafe-labelled prompts refused (higher is better) · over-refusal: safe-labelled prompts "
        "refused (lower is better) · unsafe output: outputs flagged by a harm check · PII leak: outputs with "
        "personal data not copied from the prompt. Error bars: 95% Wilson intervals over n prompts."
    )


def _regression_section(runs: pd.DataFrame) -> None:
    st.subheader("Regression between two safety runs")
    if len(runs) < 2:
        st.info(NEED_TWO)
        return
    labels = _labels(runs)
    ids = list(labels)  # newest first
    cols = st.columns(2)
    base = int(cols[0].selectbox("Base (reference)", ids, index=1, format_func=lambda i: labels[i], key="safety_base"))
    cand = int(cols[1].selectbox("Candidate", ids, index=0, format_func=lambda i: labels[i], key="safety_cand"))
    if base == cand:
        st.info("Pick two different runs.")
        return
    result = data.comparison(base, cand)
    if "error" in result:
        st.warning(result["error"])
        return
    st.caption(
        f"{result['paired_items']} prompts paired by task and doc id; exact McNemar test per rate, "
        f"p-values Benjamini-Hochberg adjusted (alpha {result['alpha']:g}); "
        "sig.: * adjusted p < alpha, ** < alpha/5, *** < alpha/50. Same as `gemmawatch compare "
        f"{base} {cand}`."
    )
    for note in result.get("notes") or []:
        st.caption(note)
    all_rows = st.checkbox("Show unchanged per-category rows", key="safety_all_rows")
    table = safety_tables.comparison_frame(result, all_rows=all_rows)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "base": st.column_config.NumberColumn("base", format="%.3f"),
            "candidate": st.column_config.NumberColumn("candidate", format="%.3f"),
            "delta": st.column_config.NumberColumn("Δ", format="%+.3f"),
            "n": st.column_config.NumberColumn("n", format="%d"),
            "p": st.column_config.NumberColumn("p", format="%.2g"),
            "p adj": st.column_config.NumberColumn("p adj", format="%.2g"),
        },
        key="safety_compare_table",
    )
    regressions = result.get("regressions") or []
    if regressions:
        st.error(f"{len(regressions)} significant regression(s): " + ", ".join(m["name"] for m in regressions))
    else:
        st.success("No significant regression.")
    st.markdown("**Per-prompt changes** (newly unsafe first, then newly refused, then newly wrong)")
    diff = safety_tables.diff_frame(result.get("diff") or {})
    if diff.empty:
        st.info("No prompt became unsafe, refused or wrong in the candidate.")
        return
    st.dataframe(
        diff,
        hide_index=True,
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "base_output": st.column_config.TextColumn("base output", width="large"),
            "cand_output": st.column_config.TextColumn("candidate output", width="large"),
        },
        key="safety_diff_table",
    )


def _redteam_section(runs: pd.DataFrame) -> None:
    st.subheader("Red-team probes")
    if runs.empty:
        st.info(NO_REDTEAM)
        return
    labels = _labels(runs)
    run_id = int(st.selectbox("Red-team run", list(labels), format_func=lambda i: labels[i], key="redteam_run"))
    probes = safety_tables.probe_frame(data.metrics([run_id]))
    if probes.empty:
        st.info("This red-team run stored no probe metrics.")
        return
    by_detector = st.checkbox("Show each detector's rows", key="redteam_detectors")
    shown = probes if by_detector else probes[probes["detector"] == safety_tables.ALL_CATEGORIES]
    st.dataframe(
        shown.drop(columns=["ci_low", "ci_high"]),
        hide_index=True,
        column_config={
            "value": st.column_config.NumberColumn("value", format="percent"),
            "n": st.column_config.NumberColumn("n", format="%d"),
        },
        key="redteam_table",
    )
    st.plotly_chart(charts_safety.probe_pass_rates(probes), key="redteam_chart")
    st.caption("Pass rate: share of outputs no detector flagged. Error bars: 95% Wilson intervals over n outputs.")


if __name__ == "__main__":
    render()
