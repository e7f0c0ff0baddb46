"""The HTML report in headless Chromium (marker ``browser``): charts draw offline, hostile outputs stay
text, nothing is fetched; and the PDF printed from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import API_KEY, API_KEY_ENV, HOSTILE_OUTPUTS, populate_report, require_chromium

from gemmawatch.dashboard.report_data import collect_report
from gemmawatch.dashboard.report_html import render_report
from gemmawatch.dashboard.report_pdf import CHROMIUM_ARGS, write_pdf
from gemmawatch.storage.engine import get_engine, session_scope

pytestmark = pytest.mark.browser
TIMEOUT_MS = 60_000


@pytest.fixture
def report_file(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    populated = populate_report(sqlite_url)
    with session_scope(get_engine(sqlite_url)) as s:
        data = collect_report(s, populated.all_runs)
    path = tmp_path / "report.html"
    path.write_text(render_report(data), encoding="utf-8")
    return path


def test_report_opens_offline_and_markup_stays_text(report_file: Path) -> None:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 2000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_file.as_uri(), timeout=TIMEOUT_MS)
            charts = page.locator(".chart").count()
            assert charts >= 4
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.chart')).every(d => d.querySelector('.main-svg'))",
                timeout=TIMEOUT_MS,
            )
            for output in HOSTILE_OUTPUTS:
                cell = page.get_by_text(output, exact=True).first
                cell.scroll_into_view_if_needed()
                assert cell.is_visible(), output
            assert page.locator("script:not([src])").count() == 3
            assert page.locator("img, a[href], iframe").count() == 0
            cell.click()  # the javascript: "link" is text: clicking it runs nothing
            page.wait_for_timeout(300)
            assert page.evaluate("typeof window.__pwned") == "undefined"
        finally:
            browser.close()
    assert dialogs == [] and errors == []
    assert requests == [report_file.as_uri()]  # nothing but the file itself: no CDN, no image, no font


def test_pdf_is_printed(report_file: Path, tmp_path: Path) -> None:
    require_chromium()
    pdf = tmp_path / "out" / "report.pdf"
    write_pdf(report_file.read_text(encoding="utf-8"), pdf)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000
