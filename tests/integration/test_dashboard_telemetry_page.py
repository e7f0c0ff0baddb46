"""The Telemetry page in-process (AppTest): live host/GPU charts in a refreshing fragment, a run's timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixtures import SAMPLES_PER_RUN, Populated, populate
from streamlit.testing.v1 import AppTest
from telemetry_fixtures import add_live_telemetry, add_probes

from gemmawatch.dashboard import app as app_module
from gemmawatch.dashboard import telemetry_data
from gemmawatch.dashboard.ui import EMPTY_STATE
from gemmawatch.dashboard.views.telemetry import EMPTY_TELEMETRY

APP = str(Path(app_module.__file__).resolve())


def _page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params.update(query or {})
    at.switch_page("views/telemetry.py").run()
    assert not at.exception, at.exception
    return at


def _figures(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_empty_database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    at = _page()
    assert [i.value for i in at.info] == [EMPTY_TELEMETRY, EMPTY_STATE]
    assert not at.get("plotly_chart") and not at.error


def test_live_charts_and_run_timeline(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    populated: Populated = populate(sqlite_url)
    add_live_telemetry(sqlite_url, minutes=10)
    add_probes(sqlite_url)
    run_id = populated.run_ids["gemma-3-270m"]
    at = _page({"run": str(run_id)})
    host, gpu, run_metrics = (m.value for m in at.multiselect)
    # Probes are the Overview's; run telemetry of the last hour is a host metric too.
    assert host == ["cpu.percent", "memory.used_mb", "host.cpu.percent"]
    assert gpu == ["gpu.utilization", "gpu.memory_used_mb"]
    assert run_metrics == ["host.cpu.percent"]
    figures = _figures(at)
    live, timeline = figures[:-1], figures[-1]
    assert len(live) == len(host) + len(gpu)
    titles = [f["layout"]["title"]["text"] for f in live]
    # 10 minutes at 5 s over a 1 h range: raw readings fit in 600 points.
    assert "cpu.percent (%) · raw" in titles and "gpu.utilization (%) · raw" in titles
    cpu = live[titles.index("cpu.percent (%) · raw")]
    assert len(cpu["data"][-1]["x"]) == 10 * 60 // 5
    # The timeline: telemetry rows, then each sample as a segment [start, start + latency] per task.
    samples = [t for t in timeline["data"] if t["mode"] == "lines+markers"]
    assert sum(len(t["x"]) for t in samples) == 3 * SAMPLES_PER_RUN
    assert {t["name"] for t in samples} == {"smoke_mc_geography", "smoke_mc_science", "smoke_gen"}
    assert any(f"all {SAMPLES_PER_RUN} timed samples" in c.value for c in at.caption)
    # More readings than points: day buckets over 30 days (no rollups yet: aggregated on the fly).
    monkeypatch.setattr(telemetry_data, "MAX_POINTS", 50)
    at.selectbox(key="telemetry_range").set_value("30 days").run()
    assert not at.exception
    titles = [f["layout"]["title"]["text"] for f in _figures(at)[:-1]]
    assert "cpu.percent (%) · 1d" in titles


def test_live_charts_refresh_in_a_fragment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemmawatch.dashboard.views import telemetry as page

    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    add_live_telemetry(sqlite_url, minutes=2)
    seen: list[object] = []
    real = page.st.fragment

    def spy(func: Any = None, *, run_every: Any = None) -> Any:
        seen.append(run_every)
        return real(func, run_every=run_every)

    monkeypatch.setattr(page.st, "fragment", spy)
    at = _page()
    assert seen[-1] == page.REFRESH_S
    at.toggle(key="telemetry_auto").set_value(False).run()
    assert seen[-1] is None and not at.exception
