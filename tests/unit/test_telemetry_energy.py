"""energy_per_token / energy_joules over telemetry row dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gemmawatch.collectors.telemetry import energy_joules, energy_per_token

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
