"""The sampler writing through storage_sink into a real SQLite database."""

from __future__ import annotations

import time
from pathlib import Path

from gemmawatch.collectors.telemetry import (
    HostCollector,
    NvmlCollector,
    ProcessCollector,
    TelemetrySampler,
    storage_sink,
)
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import telemetry as teq


def test_sampler_rows_land_in_the_database(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        run_id = rq.create_run(s, kind="eval", target_id=None, config={}, host="h", versions={})
    collectors = [HostCollector(), ProcessCollector(), NvmlCollector()]
    with TelemetrySampler(
        collectors, interval_s=0.05, sink=storage_sink(engine), run_id=run_id, flush_every_s=0.2
    ) as sampler:
        time.sleep(0.6)
    stats = sampler.stats
    assert stats.sink_errors == 0 and stats.rows_emitted > 0
    with session_scope(engine) as s:
        rows = teq.telemetry_for_run(s, run_id)
        summary = {r["metric"]: r for r in teq.telemetry_summary(s, run_id)}
        count = rq.run_summary(s, run_id)["telemetry_count"]  # type: ignore[index]
    assert len(rows) == count == stats.rows_emitted
    assert all(r["ts"].tzinfo is not None for r in rows)
    # Per-tick figures carry the sampler's interval, the host's slow figures their own 1 s.
    assert {r["interval_s"] for r in rows if r["metric"] in {"cpu.percent", "process.rss_mb"}} == {0.05}
    assert {r["interval_s"] for r in rows if r["metric"] in {"cpu.load_1m", "swap.used_mb"}} == {1.0}
    rss = summary["process.rss_mb"]
    assert rss["n"] == stats.samples and 1 < rss["min"] <= rss["max"] < 1e6
    assert rss["source"] == "psutil" and rss["unit"] == "MB"
    pid_labels = {r["labels"]["pid"] for r in rows if r["metric"] == "process.rss_mb"}
    assert len(pid_labels) == 1
    if not collectors[2].available:  # no GPU here: recorded exactly once
        assert summary["gpu.available"]["n"] == 1 and summary["gpu.available"]["max"] == 0.0


def test_a_broken_database_does_not_stop_sampling(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    # run_id 424242 does not exist: every insert violates the foreign key and the sink raises.
    with TelemetrySampler(
        [HostCollector()], interval_s=0.05, sink=storage_sink(engine), run_id=424242, flush_every_s=0.1
    ) as sampler:
        time.sleep(0.4)
        assert sampler.running
    stats = sampler.stats
    assert stats.sink_errors >= 2 and stats.rows_emitted == 0 and stats.rows_dropped > 0
