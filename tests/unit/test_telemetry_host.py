"""psutil collectors against the real machine, through /proc and through psutil."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from gemmawatch.collectors.telemetry import Collector, HostCollector, NvmlCollector, ProcessCollector, Reading

PER_TICK = {"cpu.percent", "memory.used_mb", "memory.percent"}
DETAIL = {
    "cpu.core_percent",
    "cpu.load_1m",
    "cpu.load_5m",
    "cpu.load_15m",
    "swap.used_mb",
    "disk.read_bytes_per_s",
    "disk.write_bytes_per_s",
    "net.recv_bytes_per_s",
    "net.sent_bytes_per_s",
}
UNITS = {
    "cpu.percent": "%",
    "memory.used_mb": "MB",
    "memory.percent": "%",
    "cpu.core_percent": "%",
    "cpu.load_1m": "tasks",
    "cpu.load_5m": "tasks",
    "cpu.load_15m": "tasks",
    "swap.used_mb": "MB",
    "swap.percent": "%",
    "disk.read_bytes_per_s": "B/s",
    "disk.write_bytes_per_s": "B/s",
    "net.recv_bytes_per_s": "B/s",
    "net.sent_bytes_per_s": "B/s",
}
BOTH_PATHS = pytest.mark.parametrize("use_procfs", [None, False], ids=["procfs", "psutil"])


def by_metric(readings: list[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = {}
    for r in readings:
        out.setdefault(r.metric, []).append(r)
    return out


def expected_detail() -> set[str]:
    """The slow metrics this machine can report (no disks or no network in some containers)."""
    expected = set(DETAIL)
    if psutil.disk_io_counters() is None:
        expected -= {"disk.read_bytes_per_s", "disk.write_bytes_per_s"}
    if psutil.net_io_counters() is None:
        expected -= {"net.recv_bytes_per_s", "net.sent_bytes_per_s"}
    if psutil.swap_memory().total > 0:
        expected.add("swap.percent")
    return expected


def test_collectors_satisfy_the_protocol() -> None:
    assert isinstance(HostCollector(), Collector)
    assert isinstance(ProcessCollector(), Collector)
    assert isinstance(NvmlCollector(), Collector)


@BOTH_PATHS
def test_host_values_have_types_units_labels_and_plausible_values(use_procfs: bool | None) -> None:
    col = HostCollector(use_procfs=use_procfs)
    assert col.uses_procfs is (use_procfs is None and sys.platform == "linux")
    time.sleep(0.1)
    got = by_metric(list(col.collect()))
    assert set(got) == PER_TICK | expected_detail()
    for metric, readings in got.items():
        for r in readings:
            assert r.source == "psutil" and r.unit == UNITS[metric] and isinstance(r.value, float)
            assert r.labels == ({"core": r.labels["core"]} if metric == "cpu.core_percent" else {})
            assert r.interval_s == (1.0 if metric in DETAIL | {"swap.percent"} else None)
    assert 0.0 <= got["cpu.percent"][0].value <= 100.0
    total_mb = psutil.virtual_memory().total / 2**20
    assert 0 < got["memory.used_mb"][0].value < total_mb
    assert got["memory.used_mb"][0].value == pytest.approx(psutil.virtual_memory().used / 2**20, rel=0.1)
    assert 0 < got["memory.percent"][0].value < 100
    cores = sorted(int(r.labels["core"]) for r in got["cpu.core_percent"])
    assert cores == list(range(psutil.cpu_count())) and all(0 <= r.value <= 100 for r in got["cpu.core_percent"])
    assert got["cpu.load_1m"][0].value == pytest.approx(psutil.getloadavg()[0], abs=1.0)
    assert got["swap.used_mb"][0].value >= 0
    assert all(r.value >= 0 for m in DETAIL if m.endswith("_per_s") for r in got.get(m, []))
    col.close()


@BOTH_PATHS
def test_slow_figures_come_once_per_detail_period(use_procfs: bool | None) -> None:
    col = HostCollector(detail_every_s=0.3, use_procfs=use_procfs)
    seen = []
    for _ in range(12):
        time.sleep(0.05)
        seen.append({r.metric for r in col.collect()})
    assert all(metrics >= PER_TICK for metrics in seen)
    with_detail = [i for i, metrics in enumerate(seen) if "cpu.load_1m" in metrics]
    assert with_detail[0] == 0 and 2 <= len(with_detail) < len(seen) // 2  # ~0.6 s of calls, 0.3 s period
    every_call = HostCollector(detail_every_s=0, use_procfs=use_procfs)
    time.sleep(0.05)
    assert {r.interval_s for r in every_call.collect()} == {None}
    with pytest.raises(ValueError):
        HostCollector(detail_every_s=-1)


@BOTH_PATHS
def test_rates_are_omitted_for_too_short_a_window(use_procfs: bool | None) -> None:
    col = HostCollector(use_procfs=use_procfs)
    metrics = {r.metric for r in col.collect()}  # immediately after priming: no meaningful window
    assert "cpu.percent" not in metrics and "cpu.core_percent" not in metrics
    assert not {m for m in metrics if m.endswith("_per_s")}
    assert {"memory.used_mb", "cpu.load_1m", "swap.used_mb"} <= metrics  # levels need no window


def test_two_host_collectors_keep_their_own_cpu_baselines() -> None:
    a, b = HostCollector(), HostCollector()
    time.sleep(0.1)
    assert "cpu.percent" in {r.metric for r in a.collect()}
    assert "cpu.percent" in {r.metric for r in b.collect()}  # not shortened by a's call


def test_disk_and_network_rates_follow_the_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    counters = {"read": 1000, "write": 0, "recv": 10_000, "sent": 500}

    class Disk:
        @property
        def read_bytes(self) -> int:
            return counters["read"]

        @property
        def write_bytes(self) -> int:
            return counters["write"]

    class Net:
        @property
        def bytes_recv(self) -> int:
            return counters["recv"]

        @property
        def bytes_sent(self) -> int:
            return counters["sent"]

    monkeypatch.setattr(psutil, "disk_io_counters", Disk)
    monkeypatch.setattr(psutil, "net_io_counters", Net)
    col = HostCollector(detail_every_s=0)
    time.sleep(0.2)
    counters.update(read=1000 + 2_000_000, write=0, recv=10_000 + 100_000, sent=400)  # sent went backwards
    got = {r.metric: r.value for r in col.collect()}
    assert got["disk.read_bytes_per_s"] == pytest.approx(2_000_000 / 0.2, rel=0.3)
    assert got["disk.write_bytes_per_s"] == 0.0
    assert got["net.recv_bytes_per_s"] == pytest.approx(100_000 / 0.2, rel=0.3)
    assert "net.sent_bytes_per_s" not in got  # a counter that went backwards gives no rate
    monkeypatch.setattr(psutil, "disk_io_counters", lambda: None)  # no disks (some containers)
    time.sleep(0.05)
    assert not {m for m in (r.metric for r in col.collect()) if m.startswith("disk.")}


@BOTH_PATHS
def test_process_rss_matches_psutil_and_cpu_sees_busy_work(use_procfs: bool | None) -> None:
    col = ProcessCollector(use_procfs=use_procfs)
    deadline = time.process_time() + 0.15
    while time.process_time() < deadline:  # burn CPU so the window has something to measure
        pass
    got = {r.metric: r for r in col.collect()}
    rss_mb = psutil.Process().memory_info().rss / 2**20
    assert got["process.rss_mb"].value == pytest.approx(rss_mb, rel=0.2)
    assert got["process.rss_mb"].labels == {"pid": psutil.Process().pid}
    assert got["process.rss_mb"].unit == "MB" and got["process.cpu_percent"].unit == "%"
    assert got["process.cpu_percent"].value > 5.0
    assert got["process.cpu_percent"].labels == {"pid": psutil.Process().pid}
    col.close()
    time.sleep(0.05)
    assert {r.metric for r in col.collect()} == {"process.cpu_percent", "process.rss_mb"}  # psutil after close


@BOTH_PATHS
def test_process_that_exits_yields_nothing(use_procfs: bool | None) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        col = ProcessCollector(child.pid, use_procfs=use_procfs)
        time.sleep(0.05)
        assert {r.metric for r in col.collect()} == {"process.cpu_percent", "process.rss_mb"}
    finally:
        child.kill()
        child.wait()
    assert list(col.collect()) == []


def test_unknown_pid_is_rejected_at_construction() -> None:
    with pytest.raises(psutil.NoSuchProcess):
        ProcessCollector(2**22 + 12345)
