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


MiB = 1024 * 1024
FULL = {"util": 87, "mem": (2048 * MiB, 81920 * MiB), "power_mw": 312_500, "temp": 64}


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
    assert all(r.source == "nvml" for r in got.values())
    assert len(got) == 5
    col.close()
    assert fake.shutdown_calls == 1 and col.available is False


def test_each_unsupported_field_is_skipped_individually() -> None:
    second = dict(FULL, power_mw=NVMLError_NotSupported(3), temp=NVMLError_NotSupported(3))
    third = dict(FULL, mem=NVMLError_NotSupported(3), util=NVMLError_NotSupported(3))
    col = NvmlCollector(nvml=FakeNvml([FULL, second, third]))
    got = by_key(list(col.collect()))
    assert {m for d, m in got if d == "0"} == {
        "gpu.utilization",
        "gpu.memory_used_mb",
        "gpu.memory_total_mb",
        "gpu.power_w",
        "gpu.temperature_c",
    }
    assert {m for d, m in got if d == "1"} == {"gpu.utilization", "gpu.memory_used_mb", "gpu.memory_total_mb"}
    assert {m for d, m in got if d == "2"} == {"gpu.power_w", "gpu.temperature_c"}
    # Still the same on the next call: skipping is per call, not a permanent blacklist.
    assert len(list(col.collect())) == len(got)


def test_other_nvml_errors_skip_the_field_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    broken = dict(FULL, temp=NVMLError_GpuIsLost(15))
    col = NvmlCollector(nvml=FakeNvml([broken]))
    with caplog.at_level(logging.WARNING, logger="gemmawatch.collectors.telemetry.nvml"):
        first = list(col.collect())
        second = list(col.collect())
    assert "gpu.temperature_c" not in {r.metric for r in first}
    assert len(first) == len(second) == 4
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
