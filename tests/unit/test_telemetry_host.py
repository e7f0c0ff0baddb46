"""psutil collectors against the real machine."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from gemmawatch.collectors.telemetry import Collector, HostCollector, NvmlCollector, ProcessCollector


def test_collectors_satisfy_the_protocol() -> None:
    assert isinstance(HostCollector(), Collector)
    assert isinstance(ProcessCollector(), Collector)
    assert isinstance(NvmlCollector(), Collector)


def test_host_values_are_plausible() -> None:
    col = HostCollector()
    time.sleep(0.1)
    got = {r.metric: r for r in col.collect()}
    assert set(got) == {"cpu.percent", "memory.used_mb", "memory.percent"}
    assert 0.0 <= got["cpu.percent"].value <= 100.0
    total_mb = psutil.virtual_memory().total / 2**20
    assert 0 < got["memory.used_mb"].value < total_mb
    assert got["memory.used_mb"].unit == "MB"
    assert 0 < got["memory.percent"].value < 100
    assert all(r.source == "psutil" for r in got.values())


def test_host_cpu_percent_omitted_for_too_short_a_window() -> None:
    col = HostCollector()
    metrics = {r.metric for r in col.collect()}  # immediately after priming: no meaningful window
    assert "cpu.percent" not in metrics and "memory.used_mb" in metrics


def test_process_rss_matches_psutil_and_cpu_sees_busy_work() -> None:
    col = ProcessCollector()
    deadline = time.process_time() + 0.15
    while time.process_time() < deadline:  # burn CPU so the window has something to measure
        pass
    got = {r.metric: r for r in col.collect()}
    rss_mb = psutil.Process().memory_info().rss / 2**20
    assert got["process.rss_mb"].value == pytest.approx(rss_mb, rel=0.2)
    assert got["process.rss_mb"].labels == {"pid": psutil.Process().pid}
    assert got["process.cpu_percent"].value > 5.0


def test_process_that_exits_yields_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        col = ProcessCollector(child.pid)
        time.sleep(0.05)
        assert {r.metric for r in col.collect()} == {"process.cpu_percent", "process.rss_mb"}
    finally:
        child.kill()
        child.wait()
    assert list(col.collect()) == []


def test_unknown_pid_is_rejected_at_construction() -> None:
    with pytest.raises(psutil.NoSuchProcess):
        ProcessCollector(2**22 + 12345)
