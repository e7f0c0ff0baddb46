"""The Performance page in-process (AppTest) on real load runs stored by ``run_load_test``."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dashboard_fixtures import populate
from load_fixtures import MAX_REQUESTS, SWEEP_STEPS, LoadRuns, populate_load
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard.views.performance import EMPTY_STATE
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import load as load_queries
from gemmawatch.storage.queries import runs as run_queries

APP = str(Path(app_module.__file__).resolve())
PAGE = "views/performance.py"


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _figures(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def load_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, LoadRuns]:
    """One SQLite database with a real sweep and a real concurrent run (stored once for the module)."""
    path = tmp_path_factory.mktemp("perf") / "load.db"
    url = f"sqlite:///{path}"
    return url, populate_load(url)


@pytest.fixture
def loaded(load_db: tuple[str, LoadRuns], monkeypatch: pytest.MonkeyPatch) -> LoadRuns:
    monkeypatch.setenv("GEMMAWATCH_DB", load_db[0])
    return load_db[1]


def _labels(runs: LoadRuns) -> tuple[str, str]:
    return f"#{runs.sweep} {runs.sweep_target}", f"#{runs.concurrent} variant-b"


def test_empty_database_says_which_command_fills_the_page(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    at = _page()
    assert [i.value for i in at.info] == [EMPTY_STATE]
    assert "gemmawatch bench load --target T --profile sweep --steps 5 --max-requests 50" in EMPTY_STATE
    assert not at.get("plotly_chart") and not at.error
    # Eval runs are not load runs: the page still says how to get some.
    populate(sqlite_url)
    at = _page()
    assert [i.value for i in at.info] == [EMPTY_STATE]


def test_navigation_lists_performance_after_compare(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    source = Path(APP).read_text()
    assert source.index('"compare.py"') < source.index('"performance.py", title="Performance", url_path="performance"')


def test_real_runs_steps_table_curve_and_distributions(loaded: LoadRuns, load_db: tuple[str, LoadRuns]) -> None:
    at = _page()
    sweep_label, concurrent_label = _labels(loaded)
    # Default: the latest load run of each target (two targets here).
    assert sorted(at.multiselect[0].value) == sorted([loaded.sweep, loaded.concurrent])
    (table,) = [d.value for d in at.dataframe]
    assert len(table) == SWEEP_STEPS + 1
    assert table["run"].tolist().count(sweep_label) == SWEEP_STEPS
    assert table["run"].tolist().count(concurrent_label) == 1
    sweep_rows = table[table["run"] == sweep_label].sort_values("step")
    assert sweep_rows["profile"].tolist()[:2] == ["synchronous", "concurrent@4"]
    assert sweep_rows["profile"].iloc[2].startswith("constant@")
    assert set(table["done"]) == {MAX_REQUESTS} and set(table["failed"]) == {0}
    assert set(table["req/s n"]) == {MAX_REQUESTS} and set(table["TTFT p50 (s) n"]) == {MAX_REQUESTS}
    for column in ("req/s", "output tok/s", "TTFT p50 (s)", "TTFT p99 (s)", "TPOT p50 (s)", "E2E p50 (s)",
                   "E2E p99 (s)"):  # fmt: skip
        assert (table[column] > 0).all(), column
        assert table[f"{column} 95% CI"].str.startswith("[").all(), column
    assert "goodput (req/s)" not in table.columns  # no --slo given, no goodput stored

    curve, ttft, tpot, e2e = _figures(at)
    # One trace per run, named after the run; the sweep has a point per step.
    assert [t["name"] for t in curve["data"]] == [sweep_label, concurrent_label]
    assert [len(t["x"]) for t in curve["data"]] == [SWEEP_STEPS, 1]
    assert all(t["error_y"]["symmetric"] is False for t in curve["data"])
    with session_scope(get_engine(load_db[0])) as s:
        steps = load_queries.load_steps(s, loaded.concurrent)
        sweep_summary = run_queries.run_summary(s, loaded.sweep)
        requests = load_queries.load_requests(s, loaded.concurrent)
    assert curve["data"][1]["y"] == [steps[0]["metrics"]["e2e_p50_s"]["value"]]
    # A star where the sweep found a knee (the trivial server may or may not saturate in 40 requests).
    knee = (sweep_summary["config"] or {}).get("saturation")  # type: ignore[index]
    stars = [s for t in curve["data"] for s in t["marker"]["symbol"] if s == "star"]
    assert len(stars) == (1 if knee else 0)

    texts = [t.value for t in at.text]
    assert len(texts) == 2 and texts[0].startswith(f"{sweep_label}: ")
    assert texts[1] == f"{concurrent_label}: one load level, no sweep (a sweep, --profile sweep, finds the knee)."

    for figure in (ttft, e2e):
        assert [t["name"] for t in figure["data"]] == [
            f"{sweep_label} (n={SWEEP_STEPS * MAX_REQUESTS})",
            f"{concurrent_label} (n={MAX_REQUESTS})",
        ]
        assert len(figure["layout"]["shapes"]) == 6  # p50, p95, p99 per run
    # The ECDF's p50/p99 are the stored summary's (same requests, numpy linear percentiles).
    shapes = {s["name"]: s["x0"] for s in ttft["layout"]["shapes"]}
    assert shapes[f"{concurrent_label} p50"] == pytest.approx(steps[0]["metrics"]["ttft_p50_s"]["value"], rel=1e-12)
    assert shapes[f"{concurrent_label} p99"] == pytest.approx(steps[0]["metrics"]["ttft_p99_s"]["value"], rel=1e-12)
    e2e_values = [e.e2e_s for e in requests if e.ok and e.phase == "measure"]
    e2e_shapes = {s["name"]: s["x0"] for s in e2e["layout"]["shapes"]}
    assert e2e_shapes[f"{concurrent_label} p95"] == pytest.approx(float(np.percentile(e2e_values, 95)), rel=1e-12)
    # TPOT (excluding the first token) per request: the same values the stored step percentiles come from.
    tpot_shapes = {s["name"]: s["x0"] for s in tpot["layout"]["shapes"]}
    stored_tpot_p50 = steps[0]["metrics"]["tpot_p50_s"]["value"]
    assert tpot_shapes[f"{concurrent_label} p50"] == pytest.approx(stored_tpot_p50, rel=1e-12)


def test_latency_selector_and_step_filter(loaded: LoadRuns) -> None:
    at = _page()
    sweep_label, _ = _labels(loaded)
    at.selectbox(key="performance_latency").set_value("ttft_p99_s").run()
    assert not at.exception
    table = at.dataframe[0].value
    curve = _figures(at)[0]
    expected = table[table["run"] == sweep_label]["TTFT p99 (s)"].tolist()
    assert sorted(curve["data"][0]["y"]) == pytest.approx(sorted(expected))
    assert curve["layout"]["yaxis"]["title"]["text"] == "TTFT p99 latency"
    # Only the knee (or highest-throughput) step of the sweep in the distributions.
    at.radio(key="performance_steps").set_value(at.radio(key="performance_steps").options[1]).run()
    at.checkbox(key="performance_log_x").check().run()
    assert not at.exception
    _, ttft, _, _ = _figures(at)
    assert ttft["data"][0]["name"] == f"{sweep_label} (n={MAX_REQUESTS})"
    assert ttft["layout"]["xaxis"]["type"] == "log"
    at.multiselect[0].set_value([]).run()
    assert any("at least one" in i.value for i in at.info) and not at.get("plotly_chart")


def test_stored_knee_is_starred_and_its_reason_shown_as_plain_text(
    load_db: tuple[str, LoadRuns], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, runs = load_db
    copy = tmp_path / "knee.db"
    # The backup API, not a file copy: the source may still hold recent pages in its WAL file.
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    reason = "Throughput stopped rising after step 1: <b>bold?</b> **not bold** <script>alert(1)</script>"
    with session_scope(get_engine(f"sqlite:///{copy}")) as s:
        saturation = {"step": 1, "reason": reason, "max_throughput": 123.4, "points": []}
        run_queries.merge_run_config(s, runs.sweep, {"saturation": saturation})
    monkeypatch.setenv("GEMMAWATCH_DB", f"sqlite:///{copy}")
    at = _page()
    sweep_label, _ = _labels(runs)
    curve = _figures(at)[0]
    sweep_trace = curve["data"][0]
    assert sweep_trace["marker"]["symbol"].count("star") == 1
    assert [a["text"] for a in curve["layout"]["annotations"]] == ["knee"]
    texts = [t.value for t in at.text]
    assert (
        texts[0] == f"{sweep_label}: knee at step 1 (concurrent@4). Highest throughput of any step: 123 req/s. {reason}"
    )
    assert not any("<script>" in m.value for m in at.markdown)


def test_database_failure_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A file that is not a database: every query fails, the page shows one line instead of a traceback.
    bogus = tmp_path / "not-a.db"
    bogus.write_bytes(b"this is not an SQLite file" * 100)
    monkeypatch.setenv("GEMMAWATCH_DB", f"sqlite:///{bogus}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value
