"""energy_per_token / energy_joules over telemetry row dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemmawatch.collectors.telemetry import energy_in_window, energy_joules, energy_per_token

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def energy(device: str, second: int, joules: float, host: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": "gpu.energy_j",
        "value": joules,
        "ts": T0 + timedelta(seconds=second),
        "labels": {"device": device, "counter": "since_driver_load"},
    }
    if host is not None:
        row["host"] = host
    return row


def test_per_device_last_minus_first_summed_over_devices() -> None:
    rows = [
        energy("0", 0, 1000.0),
        energy("1", 0, 50.0),
        energy("0", 1, 1100.0),
        {"metric": "gpu.power_w", "value": 300.0, "ts": T0, "labels": {"device": "0"}},
        energy("1", 1, 80.0),
        energy("0", 2, 1300.0),
    ]
    assert energy_joules(rows) == pytest.approx(300.0 + 30.0)
    assert energy_per_token(rows, 33) == pytest.approx(10.0)


def test_rows_out_of_order_are_sorted_by_time() -> None:
    rows = [energy("0", 2, 1300.0), energy("0", 0, 1000.0), energy("0", 1, 1100.0)]
    assert energy_per_token(rows, 3) == pytest.approx(100.0)


def test_a_counter_reset_is_ignored_not_counted_negative() -> None:
    # The driver reloaded between t=1 and t=2: the counter restarted near zero.
    rows = [energy("0", 0, 1000.0), energy("0", 1, 1100.0), energy("0", 2, 5.0), energy("0", 3, 25.0)]
    assert energy_joules(rows) == pytest.approx(100.0 + 20.0)


def test_same_device_index_on_two_hosts_are_separate_counters() -> None:
    rows = [
        energy("0", 0, 10.0, "a"),
        energy("0", 0, 900.0, "b"),
        energy("0", 1, 20.0, "a"),
        energy("0", 1, 950.0, "b"),
    ]
    assert energy_joules(rows) == pytest.approx(10.0 + 50.0)


def test_none_without_a_counter_or_without_tokens() -> None:
    power_only = [{"metric": "gpu.power_w", "value": 300.0, "ts": T0, "labels": {"device": "0"}}]
    assert energy_per_token(power_only, 10) is None
    assert energy_per_token([], 10) is None
    assert energy_per_token([energy("0", 0, 1.0)], 10) is None  # one reading measures no interval
    assert energy_per_token([energy("0", 0, 1.0), energy("0", 1, 2.0)], 0) is None
    with pytest.raises(ValueError, match="output_tokens"):
        energy_per_token([], -1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_window_energy_interpolates_the_counter_and_sums_devices() -> None:
    rows = [
        energy("0", 0, 1000.0),
        energy("0", 1, 1100.0),  # 100 W on device 0
        energy("0", 2, 1300.0),  # 200 W
        energy("1", 0, 0.0),
        energy("1", 2, 100.0),  # 50 W on device 1
    ]
    # [0.5, 1.25]: device 0 = 0.5 s at 100 W + 0.25 s at 200 W; device 1 = 0.75 s at 50 W.
    assert energy_in_window(rows, at(0.5), at(1.25)) == pytest.approx(50.0 + 50.0 + 37.5)
    assert energy_in_window(rows, at(0.2), at(0.3)) == pytest.approx(10.0 + 5.0)  # shorter than one interval
    assert energy_in_window(rows, at(0.0), at(2.0)) == pytest.approx(300.0 + 100.0)
    assert energy_in_window(rows, at(1.0), at(1.0)) == 0.0


def test_window_energy_needs_readings_on_both_sides() -> None:
    rows = [energy("0", 0, 1000.0), energy("0", 1, 1100.0), energy("1", 0, 0.0), energy("1", 3, 30.0)]
    assert energy_in_window(rows, at(0.5), at(2.0)) == pytest.approx(15.0)  # only device 1 covers it
    assert energy_in_window(rows, at(-1.0), at(0.5)) is None
    assert energy_in_window([], at(0), at(1)) is None
    reset = [energy("0", 0, 1000.0), energy("0", 1, 5.0), energy("0", 2, 25.0)]
    assert energy_in_window(reset, at(0.0), at(2.0)) == pytest.approx(20.0)  # the restart step counts 0


def test_latency_energy_metric_is_a_ratio_of_sums_and_absent_without_a_counter() -> None:
    from gemmawatch.evals.latency import latency_energy_metrics

    assert latency_energy_metrics([]) == []
    no_counter = [{"energy_j": None, "output_tokens": 10}, {"energy_j": None, "output_tokens": 5}]
    assert latency_energy_metrics(no_counter) == []
    resources = [
        {"energy_j": 30.0, "output_tokens": 10},
        {"energy_j": 10.0, "output_tokens": 10},
        {"energy_j": 5.0, "output_tokens": 0},  # a request that generated nothing: left out
    ]
    (row,) = latency_energy_metrics(resources)
    assert row["value"] == pytest.approx(2.0) and row["n"] == 2
    assert 1.0 <= row["ci_low"] <= 2.0 <= row["ci_high"] <= 3.0
    (single,) = latency_energy_metrics(resources[:1])
    assert single["value"] == single["ci_low"] == single["ci_high"] == pytest.approx(3.0)
