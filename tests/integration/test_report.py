"""The stakeholder report: builder on a populated database, `gemmawatch report`, and the Reports page (AppTest)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from cli_support import gw
from report_fixtures import API_KEY, API_KEY_ENV, HOSTILE_OUTPUTS, RECEIVER_SECRET, ReportPopulated, populate_report
from streamlit.testing.v1 import AppTest

from gemmawatch.cli.main import main
from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.report_data import collect_report
from gemmawatch.dashboard.report_html import render_report
from gemmawatch.dashboard.views.reports import EMPTY_STATE
from gemmawatch.storage.engine import get_engine, session_scope

APP = str(Path(app_module.__file__).resolve())


@pytest.fixture
def report_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> ReportPopulated:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    return populate_report(sqlite_url)


def assert_self_contained(text: str) -> None:
    """No script, style, image or frame is fetched from anywhere: everything is inline."""
    assert not re.search(r"<(script|img|iframe|link|source|video|audio)\b[^>]*\b(src|href)\s*=", text, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text, re.I)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_report_html(report_db: ReportPopulated, sqlite_url: str) -> None:
    with session_scope(get_engine(sqlite_url)) as s:
        data = collect_report(s, report_db.all_runs)
    text = render_report(data, title="Q3 <variant> review")
    assert_self_contained(text)
    assert "<title>Q3 &lt;variant&gt; review</title>" in text
    # Summary first: the safety regression of the second safety run and its newly unsafe outputs.
    summary_at, details_at = text.index("Executive summary"), text.index("Runs in this report")
    summary = text[summary_at:details_at]
    assert "safety/unsafe_output_rate[all]" in summary and "Newly unsafe outputs (8)" in summary
    assert "max_response_time" in summary  # the firing alert on a chosen target
    assert "not assessed" in summary  # the eval variants have no safety run
    # Hostile outputs are escaped text, never markup; no secret anywhere.
    for output in HOSTILE_OUTPUTS:
        assert html.escape(output, quote=False) in text  # quotes are inert in element text
    assert "<img src=x" not in text and '<a href="javascript' not in text
    assert text.count("<script") == 3  # plotly.js, the figure JSON, the boot script
    # Target options and run config (where api_key_env lives) stay out entirely, and so do receivers.
    for secret in (API_KEY, API_KEY_ENV, RECEIVER_SECRET):
        assert secret not in text
    # Numbers with n and CI in the per-run tables.
    assert "<th>95% CI</th>" in text and "<th>n</th>" in text


def test_cli_writes_a_self_contained_report(report_db: ReportPopulated, sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    env = {"GEMMAWATCH_DB": sqlite_url, API_KEY_ENV: API_KEY}
    runs = [str(r) for r in report_db.eval_runs]
    proc = gw("report", *runs, "--out", str(out), "--title", "Weekly", "--metric", "smoke_gen/exact_match", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and f"written to {out}" in proc.stderr
    text = out.read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "<h1>Weekly</h1>" in text and "smoke_gen/exact_match by variant" in text


def _reports_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/reports.py").run()
    assert not at.exception, at.exception
    return at


def test_reports_page_empty(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    at = _reports_page()
    assert [i.value for i in at.info] == [EMPTY_STATE]
    assert "gemmawatch report RUN... --out report.html" in EMPTY_STATE and "gemmawatch eval" in EMPTY_STATE
    assert not at.get("download_button")


def test_reports_page_populated(report_db: ReportPopulated) -> None:
    at = _reports_page()
    at.multiselect(key="report_runs").set_value(report_db.all_runs).run()
    assert not at.exception, at.exception
    texts = "\n".join(str(t.value) for t in at.text)
    assert "leads on" in texts or "Recommended" in texts
    assert "could not be paired" in texts  # the hostile run asked other questions than the eval runs
    regressions = next(d.value for d in at.dataframe if "adjusted p" in d.value.columns)
    assert regressions["metric"].tolist() == ["safety/unsafe_output_rate[all]"]
    labels = [b.proto.label for b in at.get("download_button")]
    assert "HTML report" in labels and {"CSV", "JSON", "PARQUET"} <= set(labels)
    # Firing alerts on a chosen target (1) or on none (2); one safety regression; 8 newly unsafe outputs.
    assert [m.value for m in at.metric][:3] == ["3", "1", "8"]


@pytest.mark.parametrize(
    ("page", "names"),
    [("run", ["metrics", "samples_page_1"]), ("compare", ["compare_variants"]), ("safety", ["safety_rates_run"]),
     ("alerts", ["alerts"])],
)  # fmt: skip
def test_main_tables_have_export_buttons(report_db: ReportPopulated, page: str, names: list[str]) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    ids = [b.proto.id for b in at.get("download_button")]  # widget ids end with the key: export_<name>_<fmt>
    for name in names:
        for fmt in ("csv", "json", "parquet"):
            assert any(name in i and i.endswith(f"_{fmt}") for i in ids), (name, fmt, ids)


def test_cli_unknown_run_is_one_error_line(
    report_db: ReportPopulated, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.html"
    args = ["report", str(report_db.eval_runs[0]), "9999", "--out", str(out), "--db", sqlite_url]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gemmawatch: error: Run 9999 does not exist. Fix: pick an id from `gemmawatch runs list`"]
    assert not out.exists()
