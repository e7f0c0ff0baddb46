"""The real dashboard in a real browser: `streamlit run` + headless Chromium (marker ``browser``).

Starts the server exactly as ``gemmawatch dashboard`` does (launch.streamlit_command),
on a free loopback port with a populated SQLite database (eval runs, plus real
load runs against the trivial OpenAI server for the Performance page, safety and red-team
runs, alerts in every state), opens every page,
waits for the Plotly charts to draw and Streamlit to go idle, checks that no
exception box is shown, and saves a screenshot per page under ``screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_fixtures import Populated, populate, populate_alerts, populate_safety
from load_fixtures import populate_load

from gemmawatch.dashboard.launch import streamlit_command, wait_healthy

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Tall viewport: the app scrolls inside its own container, so full_page screenshots clip.
VIEWPORT = {"width": 1400, "height": 2200}
TIMEOUT_MS = 90_000


def _require_chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("GEMMAWATCH_SKIP_BROWSER") == "1":
        pytest.skip("Chromium is not installed and GEMMAWATCH_SKIP_BROWSER=1")
    pytest.fail(
        "Chromium is not installed: run `apt-get install -y chromium` (.ci/run does), "
        "or set GEMMAWATCH_SKIP_BROWSER=1 to skip the browser test.",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Populated]]:
    """A dashboard server on a populated database; only this server is stopped afterwards."""
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    populated = populate(url)
    populate_load(url)
    populate_safety(url)
    populate_alerts(url)
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    env = {**os.environ, "GEMMAWATCH_DB": url}
    proc = subprocess.Popen(
        streamlit_command("127.0.0.1", port, url), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(base, timeout_s=90, proc=proc):
            log.flush()
            tail = (tmp_path / "streamlit.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"streamlit did not become healthy on {base}:\n{tail}", pytrace=False)
        yield base, populated
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def test_every_page_renders_charts_without_exceptions(server: tuple[str, Populated]) -> None:
    chromium = _require_chromium()
    from playwright.sync_api import sync_playwright

    base, populated = server
    run_id = populated.run_ids["gemma-3-270m"]
    # (screenshot name, path, plotly charts expected, text that must be visible)
    pages = [
        ("overview", "/", 1, "Firing alerts"),
        ("run", f"/run?run={run_id}", 4, f"Run #{run_id} · gemma-3-270m"),
        # Grouped bars (scores, latency) and the accuracy-vs-latency Pareto scatter.
        ("compare", "/compare", 3, "Accuracy vs cost"),
        # The newest safety run's samples and its per-item diff against the older one (bars of changes).
        ("evaluations", "/evaluations", 1, "Which items flipped between two runs"),
        ("catalog", "/catalog", 1, "Family matrix and selection guide"),
        # Throughput-latency curve and the TTFT / E2E distributions.
        ("performance", "/performance", 4, "Throughput vs latency"),
        # Safety rates per category and red-team pass rates; the first alert's value history.
        ("safety", "/safety", 2, "Regression between two safety runs"),
        ("alerts", "/alerts", 1, "Test a notification receiver"),
        # A live host chart (the fixture's run telemetry is minutes old) and the latest run's timeline.
        ("telemetry", "/telemetry", 2, "Run timeline"),
        ("reports", "/reports", 1, "Executive summary"),
    ]
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            for name, path, charts, text in pages:
                page.goto(base + path, timeout=TIMEOUT_MS)
                page.wait_for_selector(".js-plotly-plot .main-svg", timeout=TIMEOUT_MS)
                page.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                    timeout=TIMEOUT_MS,
                )
                page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)
                assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {name}"
                assert page.locator(".js-plotly-plot").count() >= charts, name
                assert page.get_by_text(text, exact=False).first.is_visible(), f"{text!r} not shown on {name}"
                page.screenshot(path=str(SCREENSHOTS / f"dashboard_{name}.png"))
                if name == "run":
                    # The page keeps ?run= in the URL so it can be shared.
                    assert f"run={run_id}" in page.url
                    # The lower half (samples, telemetry): scroll the app's own container.
                    page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
                    page.screenshot(path=str(SCREENSHOTS / "dashboard_run_telemetry.png"))
        finally:
            browser.close()
    for name in [*(p[0] for p in pages), "run_telemetry"]:
        assert (SCREENSHOTS / f"dashboard_{name}.png").stat().st_size > 10_000


def test_missing_chromium_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("GEMMAWATCH_SKIP_BROWSER", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        _require_chromium()
    monkeypatch.setenv("GEMMAWATCH_SKIP_BROWSER", "1")
    with pytest.raises(pytest.skip.Exception):
        _require_chromium()
