"""Evaluations page: per-task drill-down to individual samples, and which items flipped between two runs.

Filtering, counting and paging happen in the database (``storage.queries.sample_browse``);
prompts, outputs and targets are untrusted text and reach the page only as dataframe cells
and ``st.code`` blocks, never as markdown or HTML.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts_eval, data, eval_data, eval_tables, tables, ui

__all__ = ["DIFF_PAGE_SIZE", "NEED_TWO", "NO_SAMPLES", "PAGE_SIZE", "render"]

PAGE_SIZE = 50
DIFF_PAGE_SIZE = 50
ALL_TASKS = "(all tasks)"
NO_SAMPLES = (
    "This run stored no per-sample results. Runs of `gemmawatch eval`, `gemmawatch eval --dataset` "
    "and `gemmawatch safety` store every sample."
)
NEED_TWO = (
    "The per-item diff needs two runs of the same tasks: run `gemmawatch eval` again "
    "(another target, or after a change)."
)
#: Run kinds that store a sample per item: the default run is the newest completed one of these.
SAMPLE_KINDS = ("eval", "demo", "safety")
#: Outcome filter labels -> ``sample_browse`` outcomes.
OUTCOMES = {"all samples": "all", "failed generations": "errors", "score ≥ threshold": "at_least",
            "score < threshold": "below"}  # fmt: skip
#: Changes shown by default in the diff: the items that flipped or moved.
FLIPPED = ["right → wrong", "worse score", "wrong → right", "better score"]


def render() -> None:
    """Draw the Evaluations page."""
    st.title("Evaluations")
    ui.database_caption()
    runs = data.runs()
    if runs.empty:
        ui.empty_state()
        return
    labels = {
        int(r["id"]): f"{tables.run_label(r)} · {r['kind']} · {r['label'] or '-'}" for r in runs.to_dict("records")
    }
    ids = list(labels)  # newest first
    preferred = runs[(runs["status"] == "completed") & runs["kind"].isin(list(SAMPLE_KINDS))]["id"].tolist()
    default = ids.index(int(preferred[0])) if preferred else 0
    run_id = int(st.selectbox("Run", ids, index=default, format_func=lambda i: labels[i], key="eval_run"))
    summary = eval_data.task_summary(run_id)
    if summary.empty:
        st.info(NO_SAMPLES)
    else:
        _tasks_section(run_id, summary)
        _samples_section(run_id, list(summary["task"]))
    _diff_section(runs, labels, run_id)


def _tasks_section(run_id: int, summary: pd.DataFrame) -> None:
    st.subheader("Tasks")
    st.dataframe(
        summary,
        hide_index=True,
        column_config={
            "n": st.column_config.NumberColumn("samples", format="%d"),
            "errors": st.column_config.NumberColumn("failed", format="%d"),
            "latency_s_mean": st.column_config.NumberColumn("latency mean (s)", format="%.3g"),
            "latency_s_max": st.column_config.NumberColumn("latency max (s)", format="%.3g"),
            "ttft_s_mean": st.column_config.NumberColumn("TTFT mean (s)", format="%.3g"),
            "output_tokens_mean": st.column_config.NumberColumn("output tokens mean", format="%.3g"),
        },
        key="eval_tasks_table",
    )
    rows = [{str(k): v for k, v in r.items()} for r in data.metrics([run_id]).to_dict("records")]
    metrics = tables.metrics_table(rows)
    if not metrics.empty:
        with st.expander("Metrics of this run (value, 95% CI, n)"):
            st.dataframe(metrics, hide_index=True, key="eval_metrics_table")


def _samples_section(run_id: int, tasks: list[str]) -> None:
    st.subheader("Samples")
    cols = st.columns([2, 3])
    task = cols[0].selectbox("Task", [ALL_TASKS, *tasks], key=f"eval_task_{run_id}")
    search = cols[1].text_input("Search prompt and output", key=f"eval_search_{run_id}").strip()
    task_filter = None if task == ALL_TASKS else task
    cols = st.columns([2, 2, 1])
    outcome = OUTCOMES[cols[0].radio("Show", list(OUTCOMES), key=f"eval_outcome_{run_id}")]
    keys = eval_data.score_keys(run_id, task_filter)
    key = threshold = None
    if outcome in ("at_least", "below"):
        if not keys:
            st.info("These samples have no numeric score to filter by.")
            return
        key = cols[1].selectbox("Score", keys, key=f"eval_key_{run_id}")
        threshold = cols[2].number_input("Threshold", value=0.5, step=0.1, key=f"eval_threshold_{run_id}")
    filters = {"task": task_filter, "search": search, "outcome": outcome, "score_key": key,
               "threshold": float(threshold if threshold is not None else 0.5)}  # fmt: skip
    total = eval_data.sample_count(run_id, **filters)  # type: ignore[arg-type]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = int(
        st.number_input(
            f"Page (of {pages})",
            min_value=1,
            max_value=pages,
            value=1,
            # A new filter starts again at page 1 (a fresh widget), not at a page that no longer exists.
            key=f"eval_page_{run_id}_{task}_{search}_{outcome}_{key}_{threshold}",
        )
    )
    frame = eval_data.sample_page(run_id, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **filters)  # type: ignore[arg-type]
    if frame.empty:
        st.info("No sample matches these filters.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "output": st.column_config.TextColumn("output", width="large"),
            "latency_s": st.column_config.NumberColumn("latency (s)", format="%.3g"),
            "ttft_s": st.column_config.NumberColumn("TTFT (s)", format="%.3g"),
            "id": st.column_config.NumberColumn("sample id", format="%d"),
        },
        key="eval_samples_table",
    )
    ui.export_buttons(frame, "evaluation_samples")
    st.caption(f"Page {page} of {pages} · {total} matching sample{'' if total == 1 else 's'}")
    with st.expander("Inspect one sample (full text)"):
        index = int(
            st.selectbox(
                "Sample",
                list(range(len(frame))),
                format_func=lambda i: f"{frame['task'].iloc[i]} · doc {frame['doc_id'].iloc[i]}",
                key="eval_sample_detail",
            )
        )
        row = frame.iloc[index]
        for field in ("prompt", "output", "target", "scores", "error"):
            value = row.get(field)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                st.text(field)
                st.code(str(value), language=None, wrap_lines=True)


def _diff_section(runs: pd.DataFrame, labels: dict[int, str], run_id: int) -> None:
    st.subheader("Which items flipped between two runs")
    if len(runs) < 2:
        st.info(NEED_TWO)
        return
    ids = list(labels)  # newest first
    kind = runs.set_index("id").at[run_id, "kind"]
    older = [int(i) for i in runs[(runs["kind"] == kind) & (runs["id"] < run_id)]["id"]]
    cols = st.columns(2)
    base = int(
        cols[0].selectbox(
            "Base (reference)",
            ids,
            index=ids.index(older[0]) if older else min(1, len(ids) - 1),
            format_func=lambda i: labels[i],
            key=f"eval_diff_base_{run_id}",
        )
    )
    cand = int(
        cols[1].selectbox(
            "Candidate", ids, index=ids.index(run_id), format_func=lambda i: labels[i], key=f"eval_diff_cand_{run_id}"
        )
    )
    if base == cand:
        st.info("Pick two different runs.")
        return
    keys = eval_data.score_keys(cand)
    auto = "(correctness score of each item)"
    picked = st.selectbox("Compare on", [auto, *keys], key=f"eval_diff_key_{cand}")
    flips = eval_data.flips(base, cand, key=None if picked == auto else picked)
    if flips.empty:
        st.info(
            "These runs share no items (task, doc id): they ran different tasks or datasets. "
            "Compare runs of the same tasks with the same --limit."
        )
        return
    differs = int(flips["prompt_differs"].sum())
    if differs:
        st.warning(
            f"{differs} of {len(flips)} paired items have different prompts: these runs did not ask the same "
            "questions, so their flips say little (`gemmawatch compare` refuses to test them)."
        )
    counts = eval_tables.flip_counts(flips)
    metric_cols = st.columns(max(1, len(counts)))
    for column, (change, count) in zip(metric_cols, counts.items(), strict=False):
        column.metric(change, count)
    st.plotly_chart(charts_eval.change_bars(counts), key="eval_diff_chart")
    shown_changes = st.multiselect(
        "Changes", list(eval_tables.CHANGES), default=[c for c in FLIPPED if c in counts], key="eval_diff_changes"
    )
    shown = flips[flips["change"].isin(shown_changes)]
    st.caption(
        f"{len(flips)} items paired by task and doc id (as `gemmawatch compare {base} {cand}`); each compared on "
        "the chosen score (by default its correctness score: acc, exact_match..., unsafe_output; else the first "
        "score both runs have). "
        "The Compare page tests whether the differences are significant."
    )
    if shown.empty:
        st.info("No item made the selected changes.")
        return
    pages = max(1, math.ceil(len(shown) / DIFF_PAGE_SIZE))
    page = int(
        st.number_input(
            f"Diff page (of {pages})", min_value=1, max_value=pages, value=1, key=f"eval_diff_page_{base}_{cand}"
        )
    )
    st.dataframe(
        shown.iloc[(page - 1) * DIFF_PAGE_SIZE : page * DIFF_PAGE_SIZE],
        hide_index=True,
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "base_output": st.column_config.TextColumn("base output", width="large"),
            "cand_output": st.column_config.TextColumn("candidate output", width="large"),
            "delta": st.column_config.NumberColumn("Δ", format="%+.3g"),
        },
        key="eval_diff_table",
    )
    ui.export_buttons(shown, "flipped_items")


if __name__ == "__main__":
    render()
