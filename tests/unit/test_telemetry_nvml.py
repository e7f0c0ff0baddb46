"""NvmlCollector parsing paths, driven by a fake pynvml module (no GPU needed)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from gemmawatch.collectors.telemetry import NvmlCollector, Reading


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # names mirror pynvml
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


class FakeNvml:
    """The subset of pynvml the collector uses; per-device behaviour is configurable."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, devices: list[dict[str, Any]], init_error: Exception | None = None) -> None:
        self.devices = devices
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        return self.devices[i]

    @staticmethod
    def _get(h: dict[str, Any], key: str) -> Any:
        v = h[key]
        if isinstance(v, Exception):
            raise v
        return v

    def nvmlDeviceGetUtilizationRates(self, h: dict[str, Any]) -> Any:
        return SimpleNamespace(gpu=self._get(h, "util"), memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        used, total = self._get(h, "mem")
        return SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetPowerUsage(self, h: dict[str, Any]) -> int:
        return int(self._get(h, "power_mw"))

    def nvmlDeviceGetTemperature(self, h: dict[str, Any], sensor: int) -> int:
        assert sensor == 0
        return int(self._get(h, "temp"))

    def nvmlDeviceGetTotalEnergyConsumption(self, h: dict[str, Any]) -> int:
        return int(self._get(h, "energy_mj"))

    def nvmlDeviceGetClockInfo(self, h: dict[str, Any], clock: int) -> int:
        return int(self._get(h, {1: "sm_mhz", 2: "mem_mhz"}[clock]))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: dict[str, Any]) -> int:
        return int(self._get(h, "throttle"))


MiB = 1024 * 1024
FULL = {
    "util": 87,
    "mem": (2048 * MiB, 81920 * MiB),
    "power_mw": 312_500,
    "temp": 64,
    "energy_mj": 123_456_789,
    "sm_mhz": 1980,
    "mem_mhz": 2619,
    "throttle": 0x4 | 0x20,
}
NEW_FIELDS = {"gpu.energy_j", "gpu.sm_clock_mhz", "gpu.mem_clock_mhz", "gpu.throttle_reasons"}
BASIC_FIELDS = {"gpu.utilization", "gpu.memory_used_mb", "gpu.memory_total_mb", "gpu.power_w", "gpu.temperature_c"}


def by_key(readings: list[Reading]) -> dict[tuple[str, str], Reading]:
    return {(r.labels["device"], r.metric): r for r in readings}


def test_full_device_is_parsed_with_units_and_labels() -> None:
    fake = FakeNvml([FULL])
    col = NvmlCollector(nvml=fake)
    assert col.available is True
    got = by_key(list(col.collect()))
    assert got[("0", "gpu.utilization")].value == 87.0 and got[("0", "gpu.utilization")].unit == "%"
    assert got[("0", "gpu.memory_used_mb")].value == 2048.0
    assert got[("0", "gpu.memory_total_mb")].value == 81920.0
    assert got[("0", "gpu.memory_total_mb")].unit == "MB"
    power = got[("0", "gpu.power_w")]
    assert power.value == pytest.approx(312.5) and power.unit == "W"
    assert power.labels == {"device": "0", "power_kind": "average"}
    assert got[("0", "gpu.temperature_c")].value == 64.0
    energy = got[("0", "gpu.energy_j")]
    assert energy.value == pytest.approx(123_456.789) and energy.unit == "J"
    assert energy.labels == {"device": "0", "counter": "since_driver_load"}
    assert got[("0", "gpu.sm_clock_mhz")].value == 1980.0 and got[("0", "gpu.sm_clock_mhz")].unit == "MHz"
    assert got[("0", "gpu.mem_clock_mhz")].value == 2619.0 and got[("0", "gpu.mem_clock_mhz")].unit == "MHz"
    throttle = got[("0", "gpu.throttle_reasons")]
    assert throttle.value == 36.0 and throttle.unit == "bitmask" and throttle.labels == {"device": "0"}
    assert all(r.source == "nvml" for r in got.values())
    assert len(got) == 9
    col.close()
    assert fake.shutdown_calls == 1 and col.available is False


def test_each_unsupported_field_is_skipped_individually() -> None:
    second = dict(FULL, power_mw=NVMLError_NotSupported(3), temp=NVMLError_NotSupported(3))
    third = dict(FULL, mem=NVMLError_NotSupported(3), util=NVMLError_NotSupported(3))
    col = NvmlCollector(nvml=FakeNvml([FULL, second, third]))
    got = by_key(list(col.collect()))
    assert {m for d, m in got if d == "0"} == BASIC_FIELDS | NEW_FIELDS
    memory_and_util = {"gpu.utilization", "gpu.memory_used_mb", "gpu.memory_total_mb"}
    assert {m for d, m in got if d == "1"} == memory_and_util | NEW_FIELDS
    assert {m for d, m in got if d == "2"} == {"gpu.power_w", "gpu.temperature_c"} | NEW_FIELDS
    # Still the same on the next call: skipping is per call, not a permanent blacklist.
    assert len(list(col.collect())) == len(got)


def test_unsupported_energy_clocks_and_throttle_are_skipped_individually() -> None:
    """Pre-Volta boards lack the energy counter; MIG slices and some boards lack clocks or reasons."""
    no_energy = dict(FULL, energy_mj=NVMLError_NotSupported(3))
    no_sm_clock = dict(FULL, sm_mhz=NVMLError_NotSupported(3))
    no_extras = dict(
        FULL,
        energy_mj=NVMLError_NotSupported(3),
        sm_mhz=NVMLError_NotSupported(3),
        mem_mhz=NVMLError_NotSupported(3),
        throttle=NVMLError_NotSupported(3),
    )
    col = NvmlCollector(nvml=FakeNvml([no_energy, no_sm_clock, no_extras]))
    got = by_key(list(col.collect()))
    assert {m for d, m in got if d == "0"} == BASIC_FIELDS | (NEW_FIELDS - {"gpu.energy_j"})
    assert {m for d, m in got if d == "1"} == BASIC_FIELDS | (NEW_FIELDS - {"gpu.sm_clock_mhz"})
    assert got[("1", "gpu.mem_clock_mhz")].value == 2619.0  # the other clock of the same call family survives
    assert {m for d, m in got if d == "2"} == BASIC_FIELDS


def test_event_reasons_name_is_preferred_and_a_library_without_either_skips_the_field() -> None:
    class NewNvml(FakeNvml):  # nvidia-ml-py 12.x: "clocks event reasons"
        def nvmlDeviceGetCurrentClocksEventReasons(self, h: dict[str, Any]) -> int:
            return 0x1

    got = by_key(list(NvmlCollector(nvml=NewNvml([FULL])).collect()))
    assert got[("0", "gpu.throttle_reasons")].value == 1.0

    class OldNvml(FakeNvml):  # a library with neither getter
        nvmlDeviceGetCurrentClocksThrottleReasons = None  # type: ignore[assignment]

    metrics = {m for _, m in by_key(list(NvmlCollector(nvml=OldNvml([FULL])).collect()))}
    assert metrics == BASIC_FIELDS | (NEW_FIELDS - {"gpu.throttle_reasons"})


def test_other_nvml_errors_skip_the_field_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    broken = dict(FULL, temp=NVMLError_GpuIsLost(15))
    col = NvmlCollector(nvml=FakeNvml([broken]))
    with caplog.at_level(logging.WARNING, logger="gemmawatch.collectors.telemetry.nvml"):
        first = list(col.collect())
        second = list(col.collect())
    assert "gpu.temperature_c" not in {r.metric for r in first}
    assert len(first) == len(second) == 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "gpu.temperature_c" in warnings[0].getMessage()


def test_absent_library_reports_gpu_available_zero_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeNvml([], init_error=NVMLError_LibraryNotFound(12))
    with caplog.at_level(logging.INFO, logger="gemmawatch.collectors.telemetry.nvml"):
        col = NvmlCollector(nvml=fake)
        first = list(col.collect())
        second = list(col.collect())
    assert col.available is False
    assert first == [Reading("nvml", "gpu.available", 0.0, "bool", {})]
    assert second == []
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "NVML unavailable" in infos[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    col.close()  # must not call nvmlShutdown on a library that never initialised
    assert fake.shutdown_calls == 0


def test_no_devices_yields_nothing() -> None:
    col = NvmlCollector(nvml=FakeNvml([]))
    assert col.available is True
    assert list(col.collect()) == []


def test_real_pynvml_on_this_machine_never_raises() -> None:
    """With the real library: a GPU gives readings, no GPU gives gpu.available=0 once."""
    col = NvmlCollector()
    readings = list(col.collect())
    if col.available:
        assert all(r.metric.startswith("gpu.") and "device" in r.labels for r in readings)
    else:
        assert [(r.metric, r.value) for r in readings] == [("gpu.available", 0.0)]
        assert list(col.collect()) == []
    col.close()
