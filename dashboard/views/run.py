"""Run page: one run's provenance, metrics with CIs, samples and telemetry.

The run is chosen with a selector or ``?run=<id>`` in the URL (kept in sync,
so a URL can be shared). Model prompts and outputs are shown only as plain
text (dataframe cells, ``st.code``), never as markdown or HTML: a model's
output is untrusted input.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, data, parity_view, tables, ui
from gemmawatch.errors import GemmawatchError, one_line
from gemmawatch.storage.queries.samples import USER_RATING, USER_RATINGS

__all__ = ["render"]

PAGE_SIZE = 20
SAMPLE_COLUMNS = [
    "task", "doc_id", "prompt", "output", "target", "scores", "latency_s", "ttft_s", "tpot_s",
    "input_tokens", "output_tokens", "error",
]  # fmt: skip


def render() -> None:
    """Draw the Run page."""
    st.title("Run")
    ui.database_caption()
    runs = data.runs()
    if runs.empty:
        ui.empty_state()
        return
    run_id = _select_run(runs)
    summary = data.run_summary(run_id)
    if summary is None:
        st.warning(f"Run {run_id} no longer exists.")
        return
    _header(summary)
    _metrics_section(summary)
    if summary.get("kind") == "parity":
        parity_view.render(summary)
    _samples_section(run_id)
    if summary["status"] == "running":
        # Only this panel reruns every few seconds while the run is still writing.
        st.fragment(run_every=data.TTL_S)(_telemetry_section)(run_id)
    else:
        _telemetry_section(run_id)


def _select_run(runs: pd.DataFrame) -> int:
    ids = [int(i) for i in runs["id"]]
    labels = {int(r["id"]): f"{tables.run_label(r)} · {r['kind']} · {r['status']}" for r in runs.to_dict("records")}
    requested = _requested_run()
    if requested is not None and requested not in ids:
        # The raw parameter is not echoed: it is user input from the URL.
        st.warning("The run in the URL (?run=…) does not exist; showing the latest run.")
    index = ids.index(requested) if requested in ids else 0
    choice = int(st.selectbox("Run", ids, index=index, format_func=lambda i: labels[i]))
    if st.query_params.get("run") != str(choice):
        st.query_params["run"] = str(choice)
    return choice


def _requested_run() -> int | None:
    raw = st.query_params.get("run")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return -1  # not a run id: reported like an unknown id


def _header(summary: dict[str, Any]) -> None:
    info = summary.get("target_info") or {}
    st.header(f"Run #{summary['id']} · {summary.get('target') or '-'}")
    cols = st.columns(4)
    cols[0].metric("Status", summary["status"])
    cols[1].metric("Backend", info.get("backend") or "-")
    cols[2].metric("Dtype", info.get("dtype") or "-")
    cols[3].metric("Duration", _duration(summary))
    details = {
        "kind": summary.get("kind"),
        "model_id": info.get("model_id"),
        "revision": info.get("revision"),
        "quantization": info.get("quantization"),
        "label": summary.get("label"),
        "host": summary.get("host"),
        "started (UTC)": _iso(summary.get("started_at")),
        "finished (UTC)": _iso(summary.get("finished_at")),
        "samples": summary.get("samples_count"),
        "telemetry rows": summary.get("telemetry_count"),
    }
    # One row, one column per field: compact, and plain text whatever the values hold.
    st.dataframe(pd.DataFrame([{k: _text(v) for k, v in details.items()}]), hide_index=True)
    if summary.get("error"):
        st.error("The run failed with this error:")
        st.code(str(summary["error"]), language=None, wrap_lines=True)
    with st.expander("Package versions and run config"):
        left, right = st.columns(2)
        left.json(summary.get("versions") or {})
        right.json(summary.get("config") or {})


def _duration(summary: dict[str, Any]) -> str:
    start, end = summary.get("started_at"), summary.get("finished_at")
    if start is None or end is None:
        return "-"
    return f"{(pd.Timestamp(end) - pd.Timestamp(start)).total_seconds():.1f} s"


def _iso(value: object) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat(timespec="seconds")  # type: ignore[arg-type]


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _metrics_section(summary: dict[str, Any]) -> None:
    st.subheader("Metrics")
    rows = summary.get("metrics") or []
    if not rows:
        st.info("This run stored no metrics.")
        return
    st.dataframe(
        tables.metrics_table(rows),
        hide_index=True,
        column_config={
            "value": st.column_config.NumberColumn("value", format="%.4g"),
            "stderr": st.column_config.NumberColumn("stderr", format="%.3g"),
            "n": st.column_config.NumberColumn("n", format="%d"),
        },
    )
    ui.export_buttons(tables.metrics_table(rows), f"run_{summary['id']}_metrics")
    frame = pd.DataFrame(rows).assign(run_label=tables.run_label(summary))
    scores, latency = tables.split_latency(frame)
    if not scores.empty:
        st.markdown("**Scores**")
        st.plotly_chart(charts.metric_bars_with_ci(scores), key="run_scores_chart")
    if not latency.empty:
        st.markdown("**Latency probe**")
        st.plotly_chart(charts.metric_bars_with_ci(latency), key="run_latency_chart")
    st.caption("One panel per metric (own scale); error bars are 95% confidence intervals over n samples.")


def _samples_section(run_id: int) -> None:
    st.subheader("Samples")
    tasks = data.sample_tasks(run_id)
    if not tasks:
        st.info("This run stored no samples.")
        return
    cols = st.columns([2, 3, 1])
    task = cols[0].selectbox("Task", ["(all tasks)", *tasks], key=f"samples_task_{run_id}")
    search = cols[1].text_input("Search prompt and output", key=f"samples_search_{run_id}").strip()
    task_filter = None if task == "(all tasks)" else task
    total = data.sample_count(run_id, task_filter, search)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = int(
        cols[2].number_input(
            f"Page (of {pages})",
            min_value=1,
            max_value=pages,
            value=1,
            step=1,
            # A new filter starts again at page 1 (a fresh widget), not at a page that no longer exists.
            key=f"samples_page_{run_id}_{task}_{search}",
        )
    )
    frame = data.samples(run_id, task=task_filter, search=search, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    if frame.empty:
        st.info("No sample matches the search." if search else "No samples on this page.")
        return
    st.dataframe(
        _samples_frame(frame),
        hide_index=True,
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "output": st.column_config.TextColumn("output", width="large"),
        },
    )
    ui.export_buttons(_samples_frame(frame), f"run_{run_id}_samples_page_{page}")
    st.caption(f"Page {page} of {pages} · {total} matching sample{'' if total == 1 else 's'}")
    _sample_detail(frame)
    _latency_chart(run_id, task_filter)


def _samples_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[[c for c in SAMPLE_COLUMNS if c in frame.columns]].copy()
    if "scores" in out.columns:
        # Dicts become compact JSON text: a dataframe cell shows text, never markup.
        out["scores"] = out["scores"].map(lambda s: json.dumps(s, sort_keys=True) if isinstance(s, dict) else s)
    return out


def _sample_detail(frame: pd.DataFrame) -> None:
    with st.expander("Inspect one sample (full text)"):
        index = st.selectbox(
            "Sample",
            list(range(len(frame))),
            format_func=lambda i: f"{frame['task'].iloc[i]} · doc {frame['doc_id'].iloc[i]}",
            key="sample_detail",
        )
        row = frame.iloc[int(index)]
        for field in ("prompt", "output", "target", "error"):
            value = row.get(field)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                st.text(field)
                st.code(str(value), language=None, wrap_lines=True)
        if "id" in frame.columns:
            _rating_form(int(row["id"]), row.get("scores"))


def _rating_form(sample_id: int, scores: object) -> None:
    """User satisfaction (1-5 and a comment) on the sample shown; ratings are appended, their mean is shown."""
    stored = scores if isinstance(scores, dict) else {}
    ratings, mean = stored.get(USER_RATINGS), stored.get(USER_RATING)
    if isinstance(ratings, list) and ratings and isinstance(mean, int | float):
        st.caption(f"Rated {len(ratings)} time{'' if len(ratings) == 1 else 's'}, mean {mean:.2f} of 5.")
        st.dataframe(pd.DataFrame(ratings), hide_index=True)
    with st.form(f"rate_sample_{sample_id}", clear_on_submit=True):
        rating = st.select_slider("Your rating of this answer", options=[1, 2, 3, 4, 5], value=3)
        comment = st.text_area("Comment (optional)", max_chars=2000)
        if st.form_submit_button("Save rating"):
            try:
                data.rate_sample(sample_id, int(rating), comment or None)
            except GemmawatchError as exc:
                st.error(one_line(str(exc)))
            else:
                st.success(f"Saved: {rating} of 5.")


def _latency_chart(run_id: int, task: str | None) -> None:
    # The histogram covers every sample of the task filter (capped), not just this page.
    frame = data.samples(run_id, task=task, offset=0, limit=5000)
    if "latency_s" not in frame.columns or frame["latency_s"].notna().sum() == 0:
        return
    st.markdown("**Per-sample latency**")
    st.plotly_chart(charts.latency_histogram(frame), key="run_latency_hist")


def _telemetry_section(run_id: int) -> None:
    st.subheader("Telemetry")
    summary = data.telemetry_summary(run_id)
    if summary.empty:
        st.info("No telemetry was recorded for this run.")
        return
    intervals = sorted({float(i) for i in summary["interval_s"].dropna()}) if "interval_s" in summary else []
    sources = sorted({str(s) for s in summary["source"]}) if "source" in summary else []
    st.caption(f"Sampled every {', '.join(f'{i:g}' for i in intervals) or '?'} s by {', '.join(sources) or '?'}.")
    st.dataframe(
        summary,
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(c, format="%.4g") for c in ("min", "avg", "max")},
    )
    frame = data.telemetry(run_id)
    names = sorted(frame["metric"].unique()) if not frame.empty else []
    chosen = st.multiselect("Metrics", names, default=names[:6], key=f"telemetry_metrics_{run_id}")
    st.plotly_chart(charts.telemetry_timeline(frame, metrics=chosen), key="run_telemetry_chart")


if __name__ == "__main__":
    render()
