"""The Gemma catalog page in-process (AppTest): documented matrix always, measured columns once runs exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import populate
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.gemma_catalog import NOT_MEASURED
from gemmawatch.dashboard.ui import EMPTY_STATE

APP = str(Path(app_module.__file__).resolve())


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/catalog.py").run()
    assert not at.exception, at.exception
    return at


def _frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_empty_database_shows_matrix_and_commands(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    at = _page()
    assert "Gemma 3n E4B" in _frame_with(at, "family")["variant"].tolist()
    measured = _frame_with(at, "command")
    assert set(measured["status"]) == {NOT_MEASURED}
    assert [i.value for i in at.info] == [EMPTY_STATE]
    assert any("ai.google.dev/gemma/docs" in c.value for c in at.caption)


def test_populated_database_shows_measurements(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    run_ids = populate(sqlite_url).run_ids
    at = _page()
    measured = _frame_with(at, "command")
    rows = measured[measured["variant"] == "Gemma 3 270M"].set_index("target")
    assert set(rows.index) == set(run_ids)  # both fixture targets are builds of the 270M model
    assert (rows["status"] == "measured").all()
    assert rows.loc["gemma-3-270m", "quality run"] == run_ids["gemma-3-270m"]
    assert rows.loc["gemma-3-270m", "latency p50 (s)"] == pytest.approx(1.2)
    assert rows.loc["gemma-3-270m", "peak memory (MB)"] > 1000  # the fixture's process RSS
    assert (measured[measured["variant"] != "Gemma 3 270M"]["status"] == NOT_MEASURED).all()
    assert not at.info
