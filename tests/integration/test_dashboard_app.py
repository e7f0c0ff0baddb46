"""The Streamlit app end to end in-process (AppTest): every page, empty and populated database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import FAILED_ERROR, MARKUP_OUTPUT, SAMPLES_PER_RUN, Populated, add_unfinished_runs, populate
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.ui import EMPTY_STATE

APP = str(Path(app_module.__file__).resolve())
PAGES = ["views/overview.py", "views/run.py", "views/compare.py"]


def _app(page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page is not None:
        at.query_params.update(query or {})
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _figures(at: AppTest) -> list[dict[str, Any]]:
    # Plotly charts have no AppTest class: the figure JSON is in the proto's spec.
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


@pytest.fixture
def empty_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return sqlite_url


@pytest.fixture
def populated(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Populated:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return populate(sqlite_url)


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_shows_how_to_fill_it(empty_db: str, page: str) -> None:
    from gemmawatch.dashboard.views.overview import MONITOR_HINT

    at = _app(page)
    # The Overview also says how to get probe results for its health table.
    assert [i.value for i in at.info if i.value != MONITOR_HINT] == [EMPTY_STATE]
    assert "gemmawatch demo --no-dashboard" in EMPTY_STATE
    assert not at.get("plotly_chart")
    assert not at.error


def test_empty_overview_kpis_are_zero(empty_db: str) -> None:
    from gemmawatch.dashboard.views.overview import MONITOR_HINT

    at = _app()
    assert _metrics(at) == {"Runs": "0", "Completed": "0", "Failed": "0", "Firing alerts": "0",
                            "Probe uptime (24 h)": "-"}  # fmt: skip
    assert [i.value for i in at.info] == [MONITOR_HINT, EMPTY_STATE]


def test_bad_database_url_is_one_error_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", "nosuchdialect://somewhere/db")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "\n" not in message and "GEMMAWATCH_DB" in message


def test_overview_populated(populated: Populated) -> None:
    at = _app()
    assert _metrics(at) == {"Runs": "2", "Completed": "2", "Failed": "0", "Firing alerts": "1",
                            "Probe uptime (24 h)": "-"}  # fmt: skip
    health, runs, alerts = (d.value for d in at.dataframe)
    assert set(health["status"]) == {"⚪ unknown"}  # stored targets that no probe reached
    assert sorted(runs["id"]) == sorted(populated.run_ids.values())
    assert set(runs["target"]) == {"gemma-3-270m", "gemma-3-270m-bf16"}
    assert alerts["rule"].tolist() == ["max_response_time"]
    assert alerts["value"].tolist() == [pytest.approx(1.65)]
    *sparklines, figure = _figures(at)
    assert len(sparklines) == 3  # runs, failed and alerts fired per day (no probes: no uptime trend)
    assert [sum(t["y"]) for f in sparklines for t in f["data"]] == [2, 0, 1]
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    # Latest run of both targets, quality tasks only (latency is on the Run page).
    assert {t["name"] for t in bars} == {f"#{i} {n}" for n, i in populated.run_ids.items()}
    assert all("latency" not in t["x"] for t in bars)
    assert all(t["error_y"]["arrayminus"] and t["error_y"]["array"] for t in bars)


def test_run_page_from_query_param(populated: Populated) -> None:
    run_id = populated.run_ids["gemma-3-270m"]
    at = _app("views/run.py", {"run": str(run_id)})
    assert at.selectbox[0].value == run_id
    assert at.header[0].value == f"Run #{run_id} · gemma-3-270m"
    metrics = _metrics(at)
    assert metrics == {"Status": "completed", "Backend": "transformers", "Dtype": "float32",
                       "Duration": metrics["Duration"]}  # fmt: skip
    assert metrics["Duration"].endswith(" s")
    frames = [d.value for d in at.dataframe]
    metrics = next(f for f in frames if "95% CI" in f.columns)
    acc = metrics[(metrics["task"] == "smoke_mc_geography") & (metrics["metric"] == "acc")].iloc[0]
    assert acc["value"] == pytest.approx(0.4) and acc["n"] == 10 and acc["95% CI"].startswith("[0.")
    assert "lm-eval 0.4.13" in set(metrics["producer"])
    samples = next(f for f in frames if "output" in f.columns)
    assert len(samples) == 20 and at.number_input[0].max == 1
    # Model output reaches the page as data (a dataframe cell), never as markup.
    assert MARKUP_OUTPUT in set(samples["output"])
    assert not any("<script>" in m.value for m in at.markdown)
    telemetry = next(f for f in frames if "interval_s" in f.columns)
    assert set(telemetry["metric"]) == {"host.cpu.percent", "process.rss"}
    assert telemetry["interval_s"].tolist() == [0.5, 0.5] and telemetry["n"].tolist() == [120, 120]
    assert any("0.5 s by psutil" in c.value for c in at.caption)
    figures = _figures(at)
    # score bars, latency-probe bars, per-sample latency histogram, telemetry timeline
    kinds = [{t["type"] for t in f["data"]} for f in figures]
    assert kinds == [{"bar"}, {"bar"}, {"histogram"}, {"scatter"}]
    assert {x for t in figures[0]["data"] for x in t["x"]} == {"smoke_gen", "smoke_mc_geography", "smoke_mc_science"}
    assert {x for t in figures[1]["data"] for x in t["x"]} == {"latency"}
    assert sum(len(t["x"]) for t in figures[3]["data"]) == 240
    # The detail view shows the chosen sample's full text as plain code blocks.
    markup_row = samples.index[samples["output"] == MARKUP_OUTPUT][0]
    at.selectbox(key="sample_detail").set_value(int(markup_row)).run()
    assert MARKUP_OUTPUT in [c.value for c in at.code]


def test_failed_and_running_runs(populated: Populated, sqlite_url: str) -> None:
    extra = add_unfinished_runs(sqlite_url)
    at = _app()
    assert _metrics(at)["Failed"] == "1" and _metrics(at)["Runs"] == "4"
    at = _app("views/run.py", {"run": str(extra["failed"])})
    assert at.error and "failed" in at.error[0].value
    assert FAILED_ERROR in [c.value for c in at.code]  # the error as plain text
    assert any("no metrics" in i.value for i in at.info) and any("no samples" in i.value for i in at.info)
    # A running run redraws its telemetry panel on a timer (fragment); it must render the same.
    at = _app("views/run.py", {"run": str(extra["running"])})
    assert _metrics(at)["Status"] == "running" and _metrics(at)["Duration"] == "-"
    assert len(_figures(at)) == 1 and {t["type"] for t in _figures(at)[0]["data"]} == {"scatter"}


def test_run_page_unknown_run_falls_back_with_warning(populated: Populated) -> None:
    at = _app("views/run.py", {"run": "99999"})
    assert at.warning and "does not exist" in at.warning[0].value
    assert "99999" not in at.warning[0].value  # URL input is not echoed
    assert at.selectbox[0].value == max(populated.run_ids.values())


def test_run_page_sample_filters(populated: Populated) -> None:
    at = _app("views/run.py", {"run": str(populated.run_ids["gemma-3-270m"])})
    at.selectbox(key=f"samples_task_{populated.run_ids['gemma-3-270m']}").set_value("smoke_gen").run()
    assert not at.exception
    samples = next(d.value for d in at.dataframe if "output" in d.value.columns)
    assert set(samples["task"]) == {"smoke_gen"} and 0 < len(samples) < SAMPLES_PER_RUN
    # Sample 2 is a smoke_gen item; the colon keeps "Question 2:" from matching other numbers.
    at.text_input[0].input("question 2:").run()
    samples = next(d.value for d in at.dataframe if "output" in d.value.columns)
    assert samples["prompt"].tolist() == ["Question 2: what is the capital of France?"]
    assert any(c.value.endswith("1 matching sample") for c in at.caption)
    at.text_input[0].input("no such text anywhere").run()
    assert any("No sample matches" in i.value for i in at.info)


def test_run_page_records_user_ratings(populated: Populated, sqlite_url: str) -> None:
    from gemmawatch.storage import get_engine, session_scope
    from gemmawatch.storage.queries import samples as sample_queries

    run_id = populated.run_ids["gemma-3-270m"]
    at = _app("views/run.py", {"run": str(run_id)})
    at.selectbox(key="sample_detail").set_value(1).run()
    # Form widgets take effect on submit: set them, then click once.
    at.select_slider[0].set_value(2)
    at.text_area[0].input("Answer is off-topic <b>bold?</b>")
    at.button[0].click().run()
    assert not at.exception and at.success and "2 of 5" in at.success[0].value
    at.select_slider[0].set_value(5)
    at.button[0].click().run()
    with session_scope(get_engine(sqlite_url)) as s:
        rows = sample_queries.list_samples(s, run_id, offset=0, limit=SAMPLES_PER_RUN)
    rated = [r for r in rows if r["scores"].get("user_ratings")]
    assert len(rated) == 1
    scores = rated[0]["scores"]
    assert [e["rating"] for e in scores["user_ratings"]] == [2, 5] and scores["user_rating"] == 3.5
    assert scores["user_ratings"][0]["comment"] == "Answer is off-topic <b>bold?</b>"
    # Shown back with the sample on the next rerun (as a table cell: text, not markup).
    at.run()
    assert any("Rated 2 times, mean 3.50 of 5." in c.value for c in at.caption)


def test_overview_target_health_from_probes(populated: Populated, sqlite_url: str) -> None:
    from telemetry_fixtures import PROBE_TARGETS, PROBES, add_probes

    up = add_probes(sqlite_url)
    at = _app()
    health = at.dataframe[0].value
    status = dict(zip(health["target"], health["status"], strict=True))
    assert status == {"gemma-canary": "🔴 down", "gemma-prod": "🟢 up",
                      "gemma-3-270m": "⚪ unknown", "gemma-3-270m-bf16": "⚪ unknown"}  # fmt: skip
    assert health["target"].iloc[0] == "gemma-canary"  # down first
    down = health[health["target"] == "gemma-canary"].iloc[0]
    assert down["error"] == "timeout" and down["probes"] == PROBES
    assert down["uptime"] == pytest.approx(PROBE_TARGETS["gemma-canary"] / PROBES)
    assert down["age"].endswith("s ago") and up["gemma-prod"]
    answered = 2 * PROBES - (PROBES - PROBE_TARGETS["gemma-canary"])
    assert _metrics(at)["Probe uptime (24 h)"] == f"{answered / (2 * PROBES):.1%}"
    assert len(_figures(at)) == 5  # 4 sparklines (uptime included) + scores
