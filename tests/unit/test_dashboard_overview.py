"""Overview's pure pieces: target health rows, zero-filled daily activity, sparklines; its SQL aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from telemetry_fixtures import PROBE_INTERVAL_S, PROBES, add_probes

from gemmawatch.dashboard import charts_overview, overview_tables
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import overview as overview_queries
from gemmawatch.storage.queries.runs import create_run, finish_run

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _probe(age_s: float, up: float, interval_s: float = 30.0) -> dict[str, object]:
    return {"target": "t", "last_ts": NOW - timedelta(seconds=age_s), "up": up, "interval_s": interval_s,
            "uptime": 0.5, "n": 2, "e2e_s": 0.3, "error_class": None if up else "connect"}  # fmt: skip


@pytest.mark.parametrize(
    ("probe", "status", "age"),
    [
        (_probe(10, 1.0), "up", "10 s ago"),
        (_probe(10, 0.0), "down", "10 s ago"),
        (_probe(100, 0.0), "down", "100 s ago"),  # within the 2 min floor
        (_probe(121, 1.0), "unknown", "2 min ago"),  # stale: the monitor stopped
        (_probe(500, 1.0, interval_s=300), "up", "8 min ago"),  # slow probes stay fresh for 3 intervals
        (_probe(7 * 3600, 1.0), "unknown", "7.0 h ago"),
    ],
)
def test_health_status_and_age(probe: dict[str, object], status: str, age: str) -> None:
    row = overview_tables.health_frame([probe], [], NOW).iloc[0]
    assert (row["status"], row["age"]) == (status, age)
    assert row["error"] == ("connect" if status == "down" else None)


def test_health_lists_unprobed_targets_and_sorts_down_first() -> None:
    probes = [{**_probe(5, 1.0), "target": "a"}, {**_probe(5, 0.0), "target": "z"}]
    frame = overview_tables.health_frame(probes, ["m", "a"], NOW)
    assert frame["target"].tolist() == ["z", "m", "a"]
    assert frame["status"].tolist() == ["down", "unknown", "up"]
    assert frame.loc[1, "age"] == "never" and frame.loc[1, "probes"] == 0
    assert overview_tables.health_frame([], [], NOW).columns.tolist() == overview_tables.HEALTH_COLUMNS


def test_daily_frame_fills_missing_days_with_zero() -> None:
    day = NOW.replace(hour=0) - timedelta(days=2)
    frame = overview_tables.daily_frame([{"day": day, "runs": 3, "failed": 1, "alerts": 2}], NOW, 4)
    assert frame["runs"].tolist() == [0, 3, 0, 0] and frame["alerts"].tolist() == [0, 2, 0, 0]
    assert frame["day"].iloc[-1] == NOW.replace(hour=0)
    assert overview_tables.daily_frame([], NOW, 2)["failed"].tolist() == [0, 0]


def test_sparkline_is_small_and_axis_free() -> None:
    fig = charts_overview.sparkline(["a", "b"], [1, 2], name="runs", bars=True)
    assert fig.layout.height == charts_overview.SPARK_HEIGHT
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.data[0].type == "bar" and list(fig.data[0].y) == [1, 2]
    line = charts_overview.sparkline([], [], name="uptime", y_format=".1%")
    assert line.data[0].type == "scatter" and ".1%" in line.data[0].hovertemplate


def test_sql_aggregates(db_url: str) -> None:
    now = datetime.now(UTC)
    add_probes(db_url, now=now)
    with session_scope(get_engine(db_url)) as s:
        for status in ("completed", "failed", "completed"):
            finish_run(s, create_run(s, kind="eval", target_id=None, host="h", config={}, versions={}), status=status)
        assert overview_queries.run_status_counts(s) == {"completed": 2, "failed": 1}
        (today,) = overview_queries.daily_activity(s, now - timedelta(days=3))
        assert (today["runs"], today["failed"], today["alerts"]) == (3, 1, 0)
        probes = {p["target"]: p for p in overview_queries.target_probes(s, now - timedelta(hours=1))}
        # Only probes since the window start count.
        late = overview_queries.target_probes(s, now - timedelta(seconds=PROBE_INTERVAL_S * 1.5))
    prod, canary = probes["gemma-prod"], probes["gemma-canary"]
    assert prod["up"] == 1.0 and prod["uptime"] == 1.0 and prod["n"] == PROBES and prod["error_class"] is None
    assert canary["up"] == 0.0 and canary["error_class"] == "timeout" and canary["uptime"] == pytest.approx(0.8)
    assert prod["last_ts"] == canary["last_ts"] and abs((now - prod["last_ts"]).total_seconds()) < 1e-3
    assert prod["e2e_s"] == pytest.approx(0.4 + 0.01 * (PROBES - 1)) and prod["interval_s"] == PROBE_INTERVAL_S
    # The canary's last answered probe is older than its last probe.
    assert canary["e2e_ts"] < canary["last_ts"]
    assert {p["target"]: p["n"] for p in late} == {"gemma-prod": 2, "gemma-canary": 2}
