"""The Compare page in-process (AppTest): paired deltas, Pareto scatter, targets mode, side-by-side view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import Populated, populate, populate_safety
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.charts_compare import FRONT_NAME
from gemmawatch.dashboard.views.compare import BY_TARGETS, NEED_TWO

APP = str(Path(app_module.__file__).resolve())


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    return at


def _figures(at: AppTest) -> dict[str, dict[str, Any]]:
    # Plotly charts have no AppTest class: the figure JSON is in the proto's spec, the key in its id.
    return {el.proto.id.rsplit("-", 1)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def _frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def populated(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Populated:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    populated = populate(sqlite_url)
    populate_safety(sqlite_url, target="gemma-3-270m")  # safety + red-team runs of the same target
    return populated


def test_compare_latest_quality_runs_with_paired_deltas(populated: Populated) -> None:
    at = _page()
    first, second = sorted(populated.run_ids.values())
    # Eval runs by default (the red-team run is newer but not a quality run).
    assert at.multiselect(key="compare_runs").value == [first, second]
    assert at.selectbox(key="compare_base").value == first
    labels = {i: f"#{i} {n}" for n, i in populated.run_ids.items()}
    table = _frame_with(at, f"{labels[second]} Δ").set_index(["task", "metric"])
    row = table.loc[("smoke_mc_geography", "acc")]
    assert row[f"{labels[first]} n"] == 10 and row[f"{labels[first]} 95% CI"].startswith("[")
    assert row[f"{labels[second]} Δ 95% CI"].startswith("[")  # a paired CI from compare_runs
    assert table.loc[("latency", "e2e_s_p50"), f"{labels[second]} Δ"] == pytest.approx(0.45)
    figures = _figures(at)
    assert {"compare_scores_chart", "compare_latency_chart", "compare_pareto"} <= set(figures)
    bars = figures["compare_scores_chart"]["data"]
    assert {t["name"] for t in bars} == set(labels.values()) and all(t["error_y"]["array"] for t in bars)
    # Latency 1.20 s vs 1.65 s and quality: the faster run is on the front whatever the y values.
    front = next(t for t in figures["compare_pareto"]["data"] if t["name"] == FRONT_NAME)
    assert labels[first] in front["text"]
    # Side by side: the safety run of gemma-3-270m next to its eval run; the bf16 target has none.
    side = _frame_with(at, "unsafe output").set_index("target")
    assert side.loc["gemma-3-270m", "quality run"] == first and side.loc["gemma-3-270m", "refusal"] > 0
    assert side.loc["gemma-3-270m-bf16", "safety run"] is None or side["safety run"].isna()["gemma-3-270m-bf16"]

    # The baseline can be any chosen run: the deltas flip sign.
    at.selectbox(key="compare_base").set_value(second).run()
    flipped = _frame_with(at, f"{labels[first]} Δ").set_index(["task", "metric"])
    assert flipped.loc[("latency", "e2e_s_p50"), f"{labels[first]} Δ"] == pytest.approx(-0.45)
    # Memory axis: the fixture's telemetry has process RSS.
    at.radio(key="compare_axis").set_value("memory").run()
    assert not at.exception
    assert any("process.rss" in c.value for c in at.caption)


def test_compare_by_targets_and_unpairable_runs(populated: Populated) -> None:
    at = _page()
    at.radio(key="compare_mode").set_value(BY_TARGETS).run()
    at.selectbox(key="compare_kind").set_value("safety").run()
    # One target has safety runs: nothing to compare.
    assert any(NEED_TWO in i.value for i in at.info)
    at.selectbox(key="compare_kind").set_value("eval").run()
    assert at.multiselect(key="compare_targets_eval").value == sorted(populated.run_ids)
    labels = {i: f"#{i} {n}" for n, i in populated.run_ids.items()}
    assert {f"{label} value" for label in labels.values()} <= set(_frame_with(at, "metric").columns)
    # An eval run against the red-team run: no common items, said as a warning, no traceback.
    at.radio(key="compare_mode").set_value("Runs").run()
    redteam = max(at.multiselect(key="compare_runs").options)
    at.multiselect(key="compare_runs").set_value([populated.run_ids["gemma-3-270m"], redteam]).run()
    assert not at.exception
    assert any("no paired deltas" in w.value and "nothing can be paired" in w.value for w in at.warning)


def test_compare_needs_two_runs(populated: Populated) -> None:
    at = _page()
    at.multiselect(key="compare_runs").set_value([populated.run_ids["gemma-3-270m"]]).run()
    assert not at.exception
    assert any(NEED_TWO in i.value for i in at.info)
    assert not at.get("plotly_chart")
