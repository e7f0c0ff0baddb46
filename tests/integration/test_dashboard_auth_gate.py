"""The dashboard's authentication gate in-process (AppTest): nothing renders before the password is right."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import populate
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard import auth

APP = str(Path(app_module.__file__).resolve())
PASSWORD = "open sesame, 42 times"


@pytest.fixture
def gated(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    monkeypatch.setattr(auth, "WRONG_PASSWORD_DELAY_S", 0.0)
    populate(sqlite_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["gemmawatch"] = {"password_sha256": auth.hash_password(PASSWORD)}
    # Interact from the second run on, as a user would after the first page load.
    return at.run().run()


def _shows_data(at: AppTest) -> bool:
    return bool(at.dataframe or at.metric or at.get("plotly_chart"))


def test_wrong_then_right_password(gated: AppTest) -> None:
    at = gated
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Password"] and not _shows_data(at)
    at.text_input[0].input("open sesame")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password."] and not _shows_data(at)
    at.text_input[0].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert not at.text_input and _shows_data(at)  # the Overview page
    assert {"Runs", "Firing alerts"} <= {m.label for m in at.metric}
    # The session stays logged in across pages.
    at.switch_page("views/run.py").run()
    assert not at.exception and at.dataframe


def test_every_page_is_gated(gated: AppTest) -> None:
    for page in ("views/run.py", "views/safety.py", "views/alerts.py"):
        gated.switch_page(page).run()
        assert not gated.exception and not _shows_data(gated), page
        assert [t.label for t in gated.text_input] == ["Password"], page


def test_public_address_without_auth_shows_nothing(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server started by hand with --server.address 0.0.0.0 and no secrets: one error line, no data.
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    populate(sqlite_url)
    monkeypatch.setattr(auth.st, "get_option", lambda name: "0.0.0.0" if name == "server.address" else None)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not _shows_data(at)
    assert len(at.error) == 1 and "password_sha256" in at.error[0].value
