"""Reports page: build the stakeholder report of chosen runs and download it (HTML, PDF).

The file is exactly what ``gemmawatch report RUN... --out FILE.html`` writes (same
data reader, same builder): one self-contained HTML file with interactive charts that
opens offline. The page previews its executive summary; names and texts from the
database are shown as plain text (``st.text``, dataframe cells), never as markdown.
"""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts, data, report_cache, report_html, report_pdf, report_summary, tables, ui
from gemmawatch.dashboard.report_data import ReportData

__all__ = ["AUTO_METRIC", "EMPTY_STATE", "render"]

#: Shown when the database has no runs: the commands that give a report something to say.
EMPTY_STATE = (
    "No runs yet, so there is nothing to report. Measure each variant with "
    "`gemmawatch eval --target T --tasks smoke` and `gemmawatch safety --target T` "
    "(or fill a demo database with `gemmawatch demo --no-dashboard`); then build the report here "
    "or with `gemmawatch report RUN... --out report.html`."
)
AUTO_METRIC = "(automatic)"


def render() -> None:
    """Draw the Reports page."""
    st.title("Reports")
    ui.database_caption()
    runs = data.runs()
    if runs.empty:
        st.info(EMPTY_STATE)
        return
    labels = {int(r["id"]): f"{tables.run_label(r)} · {r['kind']} · {r['status']}" for r in runs.to_dict("records")}
    chosen = st.multiselect(
        "Runs in the report (the first one's variant is the baseline)",
        list(labels),
        default=tables.default_compare_runs(runs),
        format_func=lambda i: labels[i],
        key="report_runs",
    )
    if not chosen:
        st.info("Pick the runs to report on: e.g. the latest eval and safety run of each variant.")
        return
    report = report_cache.report(chosen)
    cols = st.columns(2)
    title = cols[0].text_input("Title", value=report_html.DEFAULT_TITLE, key="report_title").strip()
    metrics = report_summary.quality_metrics(report.runs)
    picked = cols[1].selectbox("Primary quality metric", [AUTO_METRIC, *metrics], key="report_metric")
    primary = None if picked == AUTO_METRIC else picked
    _summary(report, primary)
    _downloads(report, title or report_html.DEFAULT_TITLE, primary)


def _summary(report: ReportData, primary: str | None) -> None:
    summary = report_summary.summarize(report, primary=primary)
    st.subheader("Executive summary")
    with st.container(border=True):
        st.text(summary.headline)
        for line in [*summary.reasons, *summary.notes]:
            st.text(f"• {line}")
    cols = st.columns(3)
    cols[0].metric("Firing alerts", len(report.alerts))
    cols[1].metric("Safety regressions", len(summary.safety_regressions))
    cols[2].metric("Newly unsafe outputs", len(summary.newly_unsafe))
    if summary.safety_regressions:
        st.markdown("**Safety regressions between the chosen runs**")
        regressions = report_html.regression_frame(summary.safety_regressions)
        st.dataframe(regressions, hide_index=True, key="report_safety_regressions")
        ui.export_buttons(regressions, "report_safety_regressions")
    if summary.quality:
        quality = report_html.quality_frame(summary)
        st.markdown("**Primary quality metric by variant**")
        st.text(str(summary.primary))
        st.dataframe(quality, hide_index=True, key="report_quality_table")
        ui.export_buttons(quality, "report_quality")
        bars = pd.DataFrame(
            {"task": summary.primary, "metric": summary.primary, "run_label": q.variant, "value": q.value,
             "ci_low": q.ci_low, "ci_high": q.ci_high, "n": q.n}
            for q in summary.quality
        )  # fmt: skip
        st.plotly_chart(charts.metric_bars_with_ci(bars), key="report_quality_chart")


def _downloads(report: ReportData, title: str, primary: str | None) -> None:
    st.subheader("Download")
    # Built only when clicked: the HTML inlines plotly.js (~5 MB) and the PDF needs Chromium.
    html = functools.partial(report_html.render_report, report, title=title, primary=primary)
    row = st.container(horizontal=True)
    row.download_button(
        "HTML report", data=lambda: html().encode("utf-8"), file_name="gemmawatch-report.html", mime="text/html",
        on_click="ignore", icon=":material/download:", key="report_html", type="primary",
    )  # fmt: skip
    if report_pdf.available():
        row.download_button(
            "PDF report", data=lambda: report_pdf.print_pdf(html()), file_name="gemmawatch-report.pdf",
            mime="application/pdf", on_click="ignore", icon=":material/picture_as_pdf:", key="report_pdf",
        )  # fmt: skip
    else:
        st.caption("PDF: install Chromium and Playwright, or print the HTML report from a browser.")
    st.caption(
        "One self-contained file: interactive charts, no server or internet needed to open it. "
        "The same file as `gemmawatch report RUN... --out report.html` (add `--pdf report.pdf`)."
    )


if __name__ == "__main__":
    render()
