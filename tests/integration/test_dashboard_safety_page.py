"""The Safety page in-process (AppTest): empty database, two safety runs and a red-team run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import (
    MARKUP_OUTPUT,
    MARKUP_PROMPT,
    NEWLY_REFUSED,
    NEWLY_UNSAFE,
    SAFETY_CATEGORIES,
    SafetyPopulated,
    populate,
    populate_safety,
)
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.views.safety import EMPTY_STATE

APP = str(Path(app_module.__file__).resolve())


def _safety_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/safety.py").run()
    assert not at.exception, at.exception
    return at


def _figures(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _frame_with(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("with_eval_runs", [False, True])
def test_no_safety_runs_says_which_command_fills_the_page(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, with_eval_runs: bool
) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    if with_eval_runs:
        populate(sqlite_url)  # eval runs only: still nothing for this page
    at = _safety_page()
    assert [i.value for i in at.info] == [EMPTY_STATE]
    assert "gemmawatch safety --target T" in EMPTY_STATE and "gemmawatch redteam" in EMPTY_STATE
    assert not at.get("plotly_chart") and not at.error


@pytest.fixture
def safety_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> SafetyPopulated:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return populate_safety(sqlite_url)


def test_rates_regression_and_probes(safety_db: SafetyPopulated) -> None:
    at = _safety_page()
    # Rates of the newest safety run (the candidate) by default; switch to the base run.
    assert at.selectbox(key="safety_run").value == safety_db.cand_run
    at.selectbox(key="safety_run").set_value(safety_db.base_run).run()
    rates = _frame_with(at, "over-refusal")
    assert rates["category"].tolist() == [*sorted(SAFETY_CATEGORIES), "all"]
    weapons = rates.set_index("category").loc["weapons"]
    assert weapons["refusal"] == pytest.approx(0.9) and weapons["refusal n"] == 10
    assert weapons["refusal 95% CI"] == "[0.596, 0.982]"
    assert pd_isna(weapons["over-refusal"])  # no safe-labelled prompts in this category
    assert rates.set_index("category").loc["all", "unsafe output n"] == 30

    rates_fig, probes_fig = _figures(at)
    bars = {t["name"]: t for t in rates_fig["data"]}
    assert set(bars) == {"refusal", "over-refusal", "unsafe output", "PII leak"}
    assert bars["refusal"]["x"] == ["self_harm", "weapons", "all"]
    assert bars["refusal"]["error_y"]["array"] and bars["refusal"]["error_y"]["arrayminus"]

    # Regression view: base = the older run, candidate = the newer one.
    assert (at.selectbox(key="safety_base").value, at.selectbox(key="safety_cand").value) == (
        safety_db.base_run, safety_db.cand_run,
    )  # fmt: skip
    table = _frame_with(at, "p adj").set_index("metric")
    unsafe = table.loc["safety/unsafe_output_rate[all]"]
    assert unsafe["delta"] == pytest.approx(NEWLY_UNSAFE / 30) and unsafe["n"] == 30
    assert unsafe["verdict"] == "REGRESSION" and unsafe["sig."] == "*" and unsafe["p adj"] < 0.05
    assert "safety/pii_leak_rate[everyday]" not in table.index  # unchanged breakdown rows hidden ...
    at.checkbox(key="safety_all_rows").check().run()
    assert "safety/pii_leak_rate[everyday]" in _frame_with(at, "p adj")["metric"].tolist()  # ... unless asked
    assert any("unsafe_output_rate[all]" in e.value for e in at.error)

    diff = _frame_with(at, "cand_output")
    changes = diff["change"].tolist()
    assert changes == ["newly unsafe"] * NEWLY_UNSAFE + ["newly refused"] * NEWLY_REFUSED
    # Prompts and outputs are dataframe cells (text), never markup.
    assert MARKUP_PROMPT in diff["prompt"].tolist() and MARKUP_OUTPUT in diff["cand_output"].tolist()
    assert not any("<img" in m.value or "<script>" in m.value for m in at.markdown)

    probes = _frame_with(at, "detector")
    assert probes["probe"].tolist() == ["dan.Dan_11_0", "encoding.InjectBase64", "all"]
    assert probes["n"].tolist() == [10, 20, 30] and set(probes["detector"]) == {"all"}
    (bar,) = probes_fig["data"]
    assert bar["y"] == ["dan.Dan_11_0", "encoding.InjectBase64", "all"] and bar["x"] == pytest.approx([0.4, 0.7, 0.6])
    at.checkbox(key="redteam_detectors").check().run()
    assert "mitigation.MitigationBypass" in set(_frame_with(at, "detector")["detector"])

    # The same run on both sides is not a comparison.
    at.selectbox(key="safety_base").set_value(safety_db.cand_run).run()
    assert any("two different runs" in i.value for i in at.info)


def pd_isna(value: object) -> bool:
    return value is None or value != value  # NaN
