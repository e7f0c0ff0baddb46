"""The stakeholder report as one self-contained HTML file (``gemmawatch report`` and the Reports page).

The file opens anywhere, offline: plotly.js is inlined once, every chart is an
interactive Plotly figure whose JSON sits in a non-executable ``application/json``
block, and nothing is fetched (a Content-Security-Policy forbids any network
request; scripts run only if their SHA-256 is listed, so even a markup injection
could not run an inline handler). Every text that comes from the database
(prompts, outputs, names, messages) is HTML-escaped: tables go through
``DataFrame.to_html(escape=True)``, the rest through :func:`html.escape`.

Layout: title; executive summary (recommendation and why, open alerts, safety
regressions with the newly unsafe prompts); charts across runs; paired
comparisons; then per run its provenance, metrics with n and 95 % CI, safety
rates, telemetry summary and a few samples.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from gemmawatch.dashboard import charts, charts_safety, safety_tables, tables
from gemmawatch.dashboard.report_data import ReportData, RunSection
from gemmawatch.dashboard.report_summary import Summary, summarize

__all__ = ["DEFAULT_TITLE", "quality_frame", "regression_frame", "render_report", "table_html"]

DEFAULT_TITLE = "gemmawatch report"
#: Newly unsafe prompts listed in the summary (all of them are in ``gemmawatch compare --json``).
NEWLY_UNSAFE_SHOWN = 20
_BOOT = """(function () {
  var specs = JSON.parse(document.getElementById("gw-figures").textContent);
  specs.forEach(function (s) {
    Plotly.newPlot(s.id, s.figure.data, s.figure.layout, {responsive: true, displaylogo: false});
  });
})();"""
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #e4e7eb; padding-bottom: 0.2rem; margin-top: 2.2rem; }
.meta, .note { color: #616e7c; font-size: 0.9rem; }
.headline { font-size: 1.15rem; font-weight: 600; padding: 0.8rem 1rem; border-radius: 6px; }
.ok { background: #e3f9e5; border-left: 5px solid #31b237; }
.warn { background: #fffbea; border-left: 5px solid #f0b429; }
.bad { background: #ffe3e3; border-left: 5px solid #e12d39; }
table.tbl { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.88rem; }
table.tbl th, table.tbl td { border: 1px solid #d9e2ec; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top;
       white-space: pre-wrap; overflow-wrap: break-word; max-width: 32rem; }
table.tbl th { background: #f0f4f8; }
.chart { min-height: 320px; break-inside: avoid; }
section.run { break-before: page; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif out[column].dtype == object:
            out[column] = out[column].map(_cell)
        elif isinstance(out[column].dtype, pd.api.extensions.ExtensionDtype):
            # Nullable integers: to_html writes their missing values as "<NA>", not na_rep.
            out[column] = [_cell(v) for v in out[column].astype(object)]
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return "–" if value is None or value is pd.NA else value


def table_html(frame: pd.DataFrame, *, empty: str = "Nothing to show.") -> str:
    """``frame`` as an HTML table, every header and cell escaped; ``empty`` (escaped) when it has no rows."""
    if frame.empty:
        return f'<p class="note">{_e(empty)}</p>'
    return _display(frame).to_html(
        index=False, escape=True, na_rep="–", border=0, classes="tbl", float_format=lambda v: f"{v:.4g}"
    )


class _Figures:
    """Collects the report's figures; each gets a ``<div>`` where it is placed."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []

    def place(self, fig: go.Figure) -> str:
        div_id = f"gw-fig-{len(self.specs)}"
        self.specs.append({"id": div_id, "figure": json.loads(str(fig.to_json()))})
        return f'<div class="chart" id="{div_id}"></div>'

    def block(self) -> str:
        payload = json.dumps(self.specs, separators=(",", ":")).replace("<", "\\u003c")
        return f'<script type="application/json" id="gw-figures">{payload}</script>'


def _csp(scripts: Sequence[str]) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode('utf-8')).digest()).decode()}'" for s in scripts
    )
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _runs_table(data: ReportData, summary: Summary) -> pd.DataFrame:
    rows = []
    for section in data.runs:
        run, info = section.run, section.run.get("target_info") or {}
        rows.append({
            "run": run["id"], "variant": summary.variants[int(run["id"])], "kind": run["kind"],
            "backend": info.get("backend"), "model": info.get("model_id"), "dtype": info.get("dtype"),
            "quantization": info.get("quantization"), "status": run["status"],
            "started (UTC)": run.get("started_at"), "duration (s)": _duration(run), "samples": run.get("samples_count"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _duration(run: dict[str, Any]) -> float | None:
    start, end = run.get("started_at"), run.get("finished_at")
    if start is None or end is None:
        return None
    return round((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds(), 1)


def _summary_html(data: ReportData, summary: Summary) -> str:
    tone = "ok" if summary.confident else "warn" if summary.recommended else "bad"
    parts = [f'<p class="headline {tone}">{_e(summary.headline)}</p>']
    if summary.reasons:
        parts.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in summary.reasons) + "</ul>")
    parts += [f'<p class="note">{_e(n)}</p>' for n in summary.notes]
    if summary.quality:
        arrow = "higher is better" if summary.higher_is_better else "lower is better"
        parts.append(f"<h3>{_e(summary.primary)} by variant ({arrow})</h3>")
        quality = quality_frame(summary)
        parts.append(table_html(quality))
    parts.append("<h3>Open alerts</h3>")
    alerts = pd.DataFrame(data.alerts)
    if not alerts.empty:
        alerts = alerts[["rule", "severity", "target", "metric", "value", "fired_at", "acknowledged_at", "message"]]
    parts.append(table_html(alerts, empty="No firing alert on these targets."))
    if data.other_alerts:
        parts.append(f'<p class="note">{data.other_alerts} more firing alert(s) on other targets.</p>')
    parts.append("<h3>Safety regressions between the chosen runs</h3>")
    parts.append(table_html(regression_frame(summary.safety_regressions), empty=_no_regression(data, "safety")))
    if summary.newly_unsafe:
        parts.append(f"<h4>Newly unsafe outputs ({len(summary.newly_unsafe)})</h4>")
        shown = pd.DataFrame(summary.newly_unsafe[:NEWLY_UNSAFE_SHOWN])
        columns = ["base_variant", "cand_variant", "task", "doc_id", "prompt", "base_output", "cand_output"]
        parts.append(table_html(shown[columns].rename(columns={"base_variant": "base", "cand_variant": "candidate"})))
    if summary.other_regressions:
        parts.append("<h3>Other regressions</h3>")
        parts.append(table_html(regression_frame(summary.other_regressions)))
    return "\n".join(parts)


def quality_frame(summary: Summary) -> pd.DataFrame:
    """The primary metric per variant: value, 95 % CI, n and where it stands on safety."""
    rows = []
    for q in summary.quality:
        assessed = "not worse than another variant" if q.variant in summary.safety_assessed else "not assessed"
        rows.append({
            "variant": q.variant, "run": q.run_id, "value": q.value, "95% CI": tables.format_ci(q.ci_low, q.ci_high),
            "n": q.n, "safety": "; ".join(q.worse_on_safety) or assessed,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _no_regression(data: ReportData, kind: str) -> str:
    compared = [c for c in data.comparisons if "error" not in c and c["base"].get("kind") == kind]
    if not compared:
        return f"Not assessed: fewer than two {kind} runs that could be paired were chosen."
    return f"No significant {kind} regression in {len(compared)} paired comparison(s)."


def regression_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Regressions (``Summary.safety_regressions`` / ``other_regressions``) as a display table."""
    out = [{
        "base": r["base_variant"], "candidate": r["cand_variant"], "metric": r["name"], "base value": r.get("base"),
        "candidate value": r.get("candidate"), "Δ": r.get("delta"),
        "Δ 95% CI": tables.format_ci(*(r.get("ci") or [None, None])), "n": r.get("n"), "test": r.get("test"),
        "adjusted p": r.get("p_adjusted"),
    } for r in rows]  # fmt: skip
    return pd.DataFrame(out)


def _charts_html(data: ReportData, summary: Summary, figures: _Figures) -> str:
    frames = [
        pd.DataFrame(s.metrics).assign(run_label=summary.variants[int(s.run["id"])]) for s in data.runs if s.metrics
    ]
    if not frames:
        return '<p class="note">The chosen runs stored no metrics.</p>'
    metrics = pd.concat(frames, ignore_index=True)
    parts = []
    quality = metrics[~metrics["task"].astype(str).str.split("/").str[0].isin(["latency", "safety", "redteam"])]
    if not quality.empty:
        parts += ["<h3>Quality metrics</h3>", figures.place(charts.metric_bars_with_ci(quality))]
    latency = metrics[metrics["task"] == tables.LATENCY_TASK]
    if not latency.empty:
        parts += ["<h3>Latency probe</h3>", figures.place(charts.metric_bars_with_ci(latency))]
    parts.append('<p class="note">Error bars: 95% confidence intervals over n samples (hover a bar for n).</p>')
    return "\n".join(parts)


def _comparisons_html(data: ReportData, summary: Summary) -> str:
    if not data.comparisons:
        return '<p class="note">No two chosen runs of the same kind with samples: nothing to pair.</p>'
    parts = []
    for c in data.comparisons:
        base, cand = summary.variants[int(c["base"]["id"])], summary.variants[int(c["candidate"]["id"])]
        head = f"#{c['base']['id']} {base} (base) vs #{c['candidate']['id']} {cand}"
        parts.append(f"<h3>{_e(head)}</h3>")
        if "error" in c:
            parts.append(f'<p class="note">Not paired: {_e(c["error"])}</p>')
            continue
        parts.append(
            f'<p class="note">{c["paired_items"]} items paired by task and doc id; exact McNemar or paired '
            f"bootstrap per metric; p-values Benjamini-Hochberg adjusted (alpha {c['alpha']:g}).</p>"
        )
        parts += [f'<p class="note">{_e(n)}</p>' for n in c.get("notes") or []]
        parts.append(table_html(safety_tables.comparison_frame(c)))
    return "\n".join(parts)


def _run_html(section: RunSection, variant: str, figures: _Figures) -> str:
    run = section.run
    parts = [f'<section class="run"><h2>Run #{_e(run["id"])} · {_e(variant)}</h2>']
    info = run.get("target_info") or {}
    facts = {"kind": run["kind"], "status": run["status"], "target": run.get("target"), **info,
             "label": run.get("label"), "host": run.get("host"), "started (UTC)": run.get("started_at"),
             "finished (UTC)": run.get("finished_at"), "samples": run.get("samples_count"),
             "telemetry rows": run.get("telemetry_count")}  # fmt: skip
    parts.append(table_html(pd.DataFrame({"field": list(facts), "value": list(facts.values())})))
    if run.get("error"):
        parts.append(f'<p class="headline bad">The run failed: {_e(run["error"])}</p>')
    parts.append("<h3>Metrics (value, 95% CI, n)</h3>")
    parts.append(table_html(tables.metrics_table(section.metrics), empty="This run stored no metrics."))
    metrics = pd.DataFrame(section.metrics)
    rates = safety_tables.rates_frame(metrics)
    if not rates.empty:
        parts += ["<h3>Safety rates by category</h3>", table_html(safety_tables.rates_table(rates))]
        parts.append(figures.place(charts_safety.safety_rates(rates)))
    probes = safety_tables.probe_frame(metrics)
    if not probes.empty:
        parts += ["<h3>Red-team probes</h3>", table_html(probes.drop(columns=["ci_low", "ci_high"]))]
        parts.append(figures.place(charts_safety.probe_pass_rates(probes)))
    parts.append("<h3>Telemetry summary</h3>")
    telemetry = pd.DataFrame(section.telemetry)
    if not telemetry.empty:
        telemetry = telemetry[[c for c in ("source", "metric", "unit", "n", "min", "avg", "max", "interval_s")
                               if c in telemetry.columns]]  # fmt: skip
    parts.append(table_html(telemetry, empty="No telemetry was recorded for this run."))
    parts.append(f"<h3>First {len(section.samples)} samples</h3>")
    parts.append(table_html(pd.DataFrame(section.samples), empty="This run stored no samples."))
    parts.append("</section>")
    return "\n".join(parts)


def render_report(data: ReportData, *, title: str = DEFAULT_TITLE, primary: str | None = None) -> str:
    """The whole report as one HTML document (see the module docstring).

    Raises:
        UserError: ``primary`` names no quality metric of the chosen runs.
    """
    summary = summarize(data, primary=primary)
    figures = _Figures()
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Generated {data.generated_at:%Y-%m-%d %H:%M} UTC by gemmawatch {_e(data.version)} · '
        f"{len(data.runs)} run(s) · baseline: {_e(summary.variants[int(data.runs[0].run['id'])])}</p>",
        "<h2>Executive summary</h2>",
        _summary_html(data, summary),
        "<h2>Runs in this report</h2>",
        table_html(_runs_table(data, summary)),
        "<h2>Side by side</h2>",
        _charts_html(data, summary, figures),
        "<h2>Paired comparisons</h2>",
        _comparisons_html(data, summary),
        *(_run_html(s, summary.variants[int(s.run["id"])], figures) for s in data.runs),
    ]
    plotly_js = get_plotlyjs()
    scripts = [plotly_js, _BOOT]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_csp(scripts)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style>",
        f"<script>{plotly_js}</script>", "</head><body>", *body, figures.block(),
        f"<script>{_BOOT}</script>", "</body></html>",
    ])  # fmt: skip
