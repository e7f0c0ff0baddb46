"""Security of the real dashboard in headless Chromium (marker ``browser``).

Hostile model outputs (``<script>``, ``<img onerror>``, ``javascript:`` links) are
stored and every page that shows outputs is opened: nothing may execute (no
dialog, ``document.title`` and ``window.__xss`` untouched, no such element or
link in the DOM) and the Run page shows the markup as text. Then every page's
rendered HTML, and every element AppTest sees, is searched for an API key
(in the server's environment, named by a stored target) and an Apprise token
(in a stored alert rule's receivers). Finally a password-protected server is
opened on a deep link first: it shows the login form and no data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import SECRET_HOOK, populate, populate_alerts
from security_fixtures import API_KEY, API_KEY_ENV, APPRISE_TOKEN, PAYLOADS, Hostile, populate_hostile

from gemmawatch.dashboard import auth
from gemmawatch.dashboard.launch import streamlit_command, wait_healthy

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 90_000
SECRETS = (API_KEY, APPRISE_TOKEN, "s3cr3t")  # "s3cr3t": the receiver of dashboard_fixtures.populate_alerts
#: Pages and the query each needs; all of them are searched for secrets, these also show outputs.
PAGES = ["/", "/run", "/compare", "/evaluations", "/performance", "/telemetry", "/safety", "/alerts", "/catalog",
         "/reports"]  # fmt: skip


def _chromium() -> str:
    found = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if found:
        return found
    if os.environ.get("GEMMAWATCH_SKIP_BROWSER") == "1":
        pytest.skip("Chromium is not installed and GEMMAWATCH_SKIP_BROWSER=1")
    pytest.fail("Chromium is not installed: run `apt-get install -y chromium`", pytrace=False)


@contextmanager
def _server(workdir: Path, url: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    (workdir / "home").mkdir(exist_ok=True)
    env = {**os.environ, "GEMMAWATCH_DB": url, API_KEY_ENV: API_KEY, "HOME": str(workdir / "home")}
    log_path = workdir / "streamlit.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(streamlit_command("127.0.0.1", port, url), env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_healthy(base, timeout_s=90, proc=proc):
                pytest.fail(f"streamlit did not start:\n{log_path.read_text(errors='replace')[-2000:]}", pytrace=False)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Hostile]:
    workdir = tmp_path_factory.mktemp("security")
    url = f"sqlite:///{workdir / 'hostile.db'}"
    populate(url)
    populate_alerts(url)
    return workdir, url, populate_hostile(url)


def _settle(page: Any) -> None:
    page.wait_for_selector('[data-testid="stMain"]', timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)


def _assert_nothing_ran(page: Any, where: str, dialogs: list[str]) -> None:
    assert dialogs == [], f"dialog opened on {where}: {dialogs}"
    assert "pwned" not in page.title(), where
    assert page.evaluate("window.__xss === undefined"), where
    assert page.locator('img[src="x"]').count() == 0, where
    assert page.locator('a[href^="javascript:"]').count() == 0, where
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {where}"


def test_outputs_never_execute_and_no_secret_is_rendered(hostile_db: tuple[Path, str, Hostile]) -> None:
    from playwright.sync_api import sync_playwright

    workdir, url, hostile = hostile_db
    queries = {"/run": f"?run={hostile.eval_run}", "/evaluations": f"?run={hostile.eval_run}"}
    with _server(workdir, url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            dialogs: list[str] = []

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            for path in PAGES:
                page.goto(base + path + queries.get(path, ""), timeout=TIMEOUT_MS)
                _settle(page)
                if path == "/run":
                    # Open the sample detail: the hostile sample is the first one, shown as text.
                    page.get_by_text("Inspect one sample (full text)").click()
                    _settle(page)
                    page.locator('[data-testid="stCode"]').first.wait_for(timeout=TIMEOUT_MS)
                    shown = "\n".join(page.locator('[data-testid="stCode"]').all_inner_texts())
                    for payload in PAYLOADS:
                        assert payload in shown, (payload, shown[:500])
                _assert_nothing_ran(page, path, dialogs)
                html = page.content()
                leaked = [s for s in SECRETS if s in html]
                assert not leaked, f"secret in the HTML of {path}"
            assert API_KEY_ENV not in os.environ  # the key only ever lived in the server's environment
        finally:
            browser.close()


def test_no_secret_in_any_element(hostile_db: tuple[Path, str, Hostile], monkeypatch: pytest.MonkeyPatch) -> None:
    # Canvas dataframes are not in the HTML: search what every page sends, element by element, in AppTest.
    from streamlit.testing.v1 import AppTest

    from gemmawatch.dashboard import app as app_module

    _, url, _ = hostile_db
    monkeypatch.setenv("GEMMAWATCH_DB", url)
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    at = AppTest.from_file(str(Path(app_module.__file__).resolve()), default_timeout=60).run()
    for path in PAGES:
        at.switch_page("views/overview.py" if path == "/" else f"views{path}.py").run()
        assert not at.exception, (path, at.exception)
        text = str(at._tree) + "".join(str(d.value.to_dict()) for d in at.dataframe)
        assert SECRET_HOOK not in text and not [s for s in SECRETS if s in text], path


def test_password_server_deep_link_shows_only_the_login(hostile_db: tuple[Path, str, Hostile],
                                                        tmp_path: Path) -> None:  # fmt: skip
    from playwright.sync_api import sync_playwright

    _, url, _ = hostile_db
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[gemmawatch]\npassword_sha256 = "{auth.hash_password("pw")}"\n'
    )
    with _server(tmp_path, url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # A fresh server's first request is a deep link (pages live in views/, not pages/, so Streamlit's
            # legacy routing cannot run the page without app.py; data.db_url gates data a second time).
            page.goto(base + "/alerts", timeout=TIMEOUT_MS)
            page.wait_for_selector('input[type="password"], [data-testid="stDataFrame"], [data-testid="stException"]',
                                   timeout=TIMEOUT_MS)  # fmt: skip
            _settle(page)
            assert page.get_by_label("Password", exact=True).is_visible()
            assert page.locator(".js-plotly-plot").count() == 0
            assert page.locator('[data-testid="stDataFrame"]').count() == 0
            page.get_by_label("Password", exact=True).fill("pw")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=TIMEOUT_MS)
        finally:
            browser.close()
