"""The Evaluations page in-process (AppTest): empty database, sample drill-down, per-item diff of two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import MARKUP_OUTPUT, NEWLY_UNSAFE, SAMPLES_PER_RUN, SafetyPopulated, populate, populate_safety
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.ui import EMPTY_STATE

APP = str(Path(app_module.__file__).resolve())


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/evaluations.py").run()
    assert not at.exception, at.exception
    return at


def _frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_empty_database_says_which_command_fills_it(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    at = _page()
    assert [i.value for i in at.info] == [EMPTY_STATE] and not at.dataframe


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], SafetyPopulated]:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return populate(sqlite_url).run_ids, populate_safety(sqlite_url)


def test_drill_down_filters_and_diff(db: tuple[dict[str, int], SafetyPopulated]) -> None:
    run_ids, safety = db
    at = _page()
    # Default: the newest completed run that stores samples (the second safety run, not the red-team run).
    assert at.selectbox(key="eval_run").value == safety.cand_run
    flips = _frame_with(at, "cand_output")
    assert set(flips["change"]) == {"right → wrong"} and len(flips) == NEWLY_UNSAFE
    assert set(flips["score"]) == {"unsafe_output"}
    assert MARKUP_OUTPUT in flips["cand_output"].tolist()  # untrusted text as a cell
    assert {m.label: m.value for m in at.metric}["right → wrong"] == str(NEWLY_UNSAFE)

    # An eval run: per-task summary, then filters run in SQL.
    run = run_ids["gemma-3-270m"]
    at.selectbox(key="eval_run").set_value(run).run()
    summary = _frame_with(at, "latency_s_mean")
    assert summary["n"].sum() == SAMPLES_PER_RUN
    samples = _frame_with(at, "output")
    assert len(samples) == SAMPLES_PER_RUN and MARKUP_OUTPUT in samples["output"].tolist()
    at.selectbox(key=f"eval_task_{run}").set_value("smoke_gen").run()
    at.radio(key=f"eval_outcome_{run}").set_value("score < threshold").run()
    assert at.selectbox(key=f"eval_key_{run}").value == "exact_match"
    wrong = _frame_with(at, "output")
    assert set(wrong["task"]) == {"smoke_gen"} and all('"exact_match": 0.0' in s for s in wrong["scores"])
    at.text_input(key=f"eval_search_{run}").input("no such text").run()
    assert any("No sample matches" in i.value for i in at.info)
    assert not any("<script>" in m.value for m in at.markdown)

    # Diff against the other target's run: paired by task and doc id.
    # Diff widgets follow the chosen run (the candidate); the base defaults to an older run of the same kind.
    at.selectbox(key=f"eval_diff_base_{run}").set_value(run_ids["gemma-3-270m-bf16"]).run()
    counts = {m.label: int(m.value) for m in at.metric}
    assert sum(counts.values()) == SAMPLES_PER_RUN
    at.multiselect(key="eval_diff_changes").set_value(["unchanged"]).run()
    assert set(_frame_with(at, "cand_output")["change"]) == {"unchanged"}
    # A safety run vs an eval run share no items.
    at.selectbox(key=f"eval_diff_base_{run}").set_value(safety.base_run).run()
    assert any("share no items" in i.value for i in at.info)
