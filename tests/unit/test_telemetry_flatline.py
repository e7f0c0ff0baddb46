"""Flat-lined sensors: the after-the-fact detector, the sampler's tracker, and the two together."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemmawatch.collectors.telemetry import (
    FLATLINED_METRIC,
    FlatlineTracker,
    ListSink,
    Reading,
    TelemetrySampler,
    flatlined_series,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(metric: str, second: float, value: float, unit: str = "W", **labels: Any) -> dict[str, Any]:
    source = "nvml" if metric.startswith("gpu.") else "psutil"
    return {
        "host": "box",
        "source": source,
        "metric": metric,
        "unit": unit,
        "value": value,
        "ts": T0 + timedelta(seconds=second),
        "interval_s": 1.0,
        "labels": labels,
    }


def busy_cpu(seconds: int) -> list[dict[str, Any]]:
    """cpu.percent alternating between 10 % and 90 % every 10 s: a load that clearly varies."""
    return [row("cpu.percent", t, 90.0 if (t // 10) % 2 else 10.0, "%") for t in range(seconds)]


def steady_cpu(seconds: int) -> list[dict[str, Any]]:
    """cpu.percent jittering around 30 % at every reading (10 Hz-style noise) but with a flat mean."""
    return [row("cpu.percent", t / 10, 30.0 + (7.0 if t % 2 else -7.0), "%") for t in range(seconds * 10)]


def test_stuck_power_while_load_varies_is_flagged() -> None:
    rows = busy_cpu(120) + [row("gpu.power_w", t, 250.0, device="0") for t in range(120)]
    found = flatlined_series(rows)
    assert len(found) == 1
    got = found[0]
    assert (got["metric"], got["source"], got["labels"], got["host"]) == ("gpu.power_w", "nvml", {"device": "0"}, "box")
    assert got["value"] == 250.0 and got["unit"] == "W"
    assert got["duration_s"] == pytest.approx(119.0) and got["start"] == T0
    assert got["load_stdev"] > 30


def test_moving_sensor_short_plateau_and_quiet_load_are_not_flagged() -> None:
    moving = [row("gpu.power_w", t, 250.0 + (t % 3), device="0") for t in range(120)]
    assert flatlined_series(busy_cpu(120) + moving) == []
    short = [row("gpu.power_w", t, 250.0 if t < 50 else 180.0 + t, device="0") for t in range(120)]
    assert flatlined_series(busy_cpu(120) + short) == []  # 49 s constant < 60 s
    stuck = [row("gpu.power_w", t, 250.0, device="0") for t in range(120)]
    # Reading-to-reading jitter is large (stdev 7) but the bucket means do not move: no load change.
    assert flatlined_series(steady_cpu(120) + stuck) == []
    assert flatlined_series(stuck) == []  # no load metric at all


def test_idle_saturated_unlisted_and_other_host_series_are_not_flagged() -> None:
    rows = busy_cpu(120)
    rows += [row("gpu.utilization", t, 0.0, "%", device="0") for t in range(120)]  # idle
    rows += [row("gpu.utilization", t, 100.0, "%", device="1") for t in range(120)]  # saturated
    rows += [row("cpu.core_percent", t, 100.0, "%", core="3") for t in range(120)]  # a busy-polling core
    rows += [row("gpu.memory_used_mb", t, 70000.0, "MB", device="0") for t in range(120)]  # vLLM reservation
    rows += [row("gpu.ecc_errors_corrected", t, 2.0, "count", device="0") for t in range(120)]
    other = [dict(r, host="other") for r in (row("gpu.power_w", t, 250.0, device="0") for t in range(120))]
    assert flatlined_series(rows + other) == []  # the other host has no load figures


def test_the_longest_run_is_judged_and_options_apply() -> None:
    values = [200.0] * 30 + [210.0] * 90  # a 29 s plateau, then an 89 s one
    rows = busy_cpu(120) + [row("cpu.load_1m", t, v, "tasks") for t, v in enumerate(values)]
    (got,) = flatlined_series(rows)
    assert got["value"] == 210.0 and got["start"] == T0 + timedelta(seconds=30)
    assert flatlined_series(rows, min_duration_s=100) == []
    assert flatlined_series(rows, metrics=["gpu.power_w"]) == []
    assert flatlined_series(rows, min_load_stdev=1000) == []
    with pytest.raises(ValueError):
        flatlined_series(rows, min_duration_s=0)


def test_epoch_seconds_and_unsorted_rows_are_accepted() -> None:
    rows = busy_cpu(90) + [row("gpu.power_w", t, 99.5, device="0") for t in range(90)]
    shuffled = [dict(r, ts=r["ts"].timestamp()) for r in reversed(rows)]
    assert [f["metric"] for f in flatlined_series(shuffled)] == ["gpu.power_w"]


def feed(tracker: FlatlineTracker, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feed rows tick by tick (grouped by ts) and collect every flag row."""
    ticks: dict[datetime, list[dict[str, Any]]] = {}
    for r in rows:
        ticks.setdefault(r["ts"], []).append(r)
    flags: list[dict[str, Any]] = []
    for ts in sorted(ticks):
        flags.extend(tracker.update(ticks[ts]))
    return flags


def test_tracker_flags_once_per_episode_and_again_after_a_change() -> None:
    power = [250.0] * 100 + [180.0] * 100 + [180.5] * 20
    rows = busy_cpu(220) + [row("gpu.power_w", t, v, device="0") for t, v in enumerate(power)]
    flags = feed(FlatlineTracker(60.0), rows)
    assert [f["ts"] for f in flags] == [T0 + timedelta(seconds=60), T0 + timedelta(seconds=160)]
    flag = flags[0]
    assert flag["metric"] == FLATLINED_METRIC and flag["value"] == 1.0 and flag["unit"] == "bool"
    assert flag["source"] == "sampler" and flag["host"] == "box"
    assert flag["labels"] == {"device": "0", "metric": "gpu.power_w", "source": "nvml"}


def test_tracker_stays_quiet_for_moving_sensors_idle_values_and_steady_load() -> None:
    moving = [row("gpu.power_w", t, 250.0 + (t % 2), device="0") for t in range(200)]
    idle = [row("gpu.utilization", t, 0.0, "%", device="0") for t in range(200)]
    assert feed(FlatlineTracker(60.0), busy_cpu(200) + moving + idle) == []
    stuck = [row("gpu.power_w", t / 10, 250.0, device="0") for t in range(2000)]
    assert feed(FlatlineTracker(60.0), steady_cpu(200) + stuck) == []


def test_tracker_agrees_with_the_detector() -> None:
    rows = busy_cpu(150) + [row("gpu.power_w", t, 250.0 if t >= 40 else float(t), device="1") for t in range(150)]
    flags = feed(FlatlineTracker(60.0), rows)
    found = flatlined_series(rows)
    assert [f["labels"]["device"] for f in flags] == [f["labels"]["device"] for f in found] == ["1"]


class Scripted:
    """cpu.percent swinging between 10 and 90 every 0.15 s, and a power sensor stuck at 300 W."""

    source = "test"

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def collect(self) -> Iterable[Reading]:
        phase = int((time.monotonic() - self.t0) / 0.15) % 2
        return [
            Reading("psutil", "cpu.percent", 90.0 if phase else 10.0, "%"),
            Reading("nvml", "gpu.power_w", 300.0, "W", {"device": "0"}),
        ]


def test_the_sampler_emits_one_flag_row_for_a_stuck_sensor() -> None:
    sink = ListSink()
    with TelemetrySampler([Scripted()], interval_s=0.02, sink=sink, flatline_window_s=0.6):
        time.sleep(1.2)
    flags = [r for r in sink.rows if r["metric"] == FLATLINED_METRIC]
    assert len(flags) == 1
    assert flags[0]["labels"] == {"device": "0", "metric": "gpu.power_w", "source": "nvml"}
    assert flags[0]["interval_s"] == 0.02 and flags[0]["run_id"] is None
    sink = ListSink()
    with TelemetrySampler([Scripted()], interval_s=0.02, sink=sink, flatline_window_s=None):
        time.sleep(0.8)
    assert not [r for r in sink.rows if r["metric"] == FLATLINED_METRIC]
