"""``gemmawatch report RUN... --out FILE.html``: the stakeholder report, same as the dashboard's Reports page."""

from __future__ import annotations

from pathlib import Path

import typer

from gemmawatch.cli.options import ConfigOption, DbOption, progress
from gemmawatch.errors import UserError


def report_command(
    runs: list[int] = typer.Argument(
        ..., help="Run ids (see `gemmawatch runs list`); the first run's variant is the baseline."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write (self-contained: opens offline)."),
    pdf: Path | None = typer.Option(None, "--pdf", help="Also print the report to this PDF (headless Chromium)."),
    title: str = typer.Option("gemmawatch report", "--title", help="Title at the top of the report."),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="Primary quality metric for the recommendation (task/metric or task/metric[filter]); "
        "default: the one most variants measured, on the most samples.",
    ),
    db: str | None = DbOption,
    config: str | None = ConfigOption,
) -> None:
    """Write one self-contained HTML report of the runs: executive summary (recommended variant and why,
    open alerts, safety regressions), charts, paired comparisons, per-run details."""
    from gemmawatch.config import load_config
    from gemmawatch.dashboard.report_data import collect_report
    from gemmawatch.dashboard.report_html import render_report
    from gemmawatch.storage.engine import get_engine, session_scope

    cfg = load_config(config)
    with session_scope(get_engine(db or cfg.database)) as s:
        data = collect_report(s, runs)
    html = render_report(data, title=title, primary=metric)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"Cannot write --out {out}: {exc.strerror or exc}. Fix: pick a writable path") from exc
    progress(f"Report of {len(data.runs)} run(s) written to {out}")
    if pdf is not None:
        from gemmawatch.dashboard.report_pdf import write_pdf

        write_pdf(html, pdf)
        progress(f"PDF written to {pdf}")
