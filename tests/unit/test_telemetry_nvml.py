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
    col = NvmlCollector(nvml=FakeNvml([FULL, second, third]), detail_every_s=0)
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
    col = NvmlCollector(nvml=FakeNvml([broken]), detail_every_s=0)
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


class NVMLError_Timeout(NVMLError):
    pass


class NVMLError_NoPermission(NVMLError):
    pass


class HealthNvml(FakeNvml):
    """FakeNvml plus ECC counters and an XID event set (pynvml's names and argument order)."""

    NVMLError_Timeout = NVMLError_Timeout
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_AGGREGATE_ECC = 1
    nvmlEventTypeXidCriticalError = 8

    def __init__(self, devices: list[dict[str, Any]], register_error: dict[int, Exception] | None = None) -> None:
        super().__init__(devices)
        self.pending: list[Any] = []
        self.registered: list[int] = []
        self.register_error = register_error or {}
        self.freed = 0
        self.ecc_calls: list[tuple[int, int]] = []

    def nvmlDeviceGetTotalEccErrors(self, h: dict[str, Any], error_type: int, counter_type: int) -> int:
        self.ecc_calls.append((error_type, counter_type))
        return int(self._get(h, {0: "ecc_corrected", 1: "ecc_uncorrected"}[error_type]))

    def nvmlDeviceGetIndex(self, h: dict[str, Any]) -> int:
        return next(i for i, d in enumerate(self.devices) if d is h)  # handles are identities

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, h: dict[str, Any], types: int, event_set: str) -> None:
        index = self.nvmlDeviceGetIndex(h)
        if index in self.register_error:
            raise self.register_error[index]
        assert types == 8 and event_set == "event-set"
        self.registered.append(index)

    def nvmlEventSetWait_v2(self, event_set: str, timeout_ms: int) -> Any:
        assert timeout_ms == 0  # never block the sampler
        if not self.pending:
            raise NVMLError_Timeout(10)
        return self.pending.pop(0)

    def nvmlEventSetFree(self, event_set: str) -> None:
        self.freed += 1

    def xid(self, index: int, code: int) -> None:
        self.pending.append(SimpleNamespace(device=self.devices[index], eventType=8, eventData=code))


HEALTHY = dict(FULL, ecc_corrected=3, ecc_uncorrected=0)


def test_ecc_totals_are_volatile_counts_read_per_field() -> None:
    no_ecc = dict(FULL, ecc_corrected=NVMLError_NotSupported(3), ecc_uncorrected=NVMLError_NotSupported(3))
    fake = HealthNvml([HEALTHY, no_ecc])
    col = NvmlCollector(nvml=fake, detail_every_s=0)
    got = by_key(list(col.collect()))
    corrected = got[("0", "gpu.ecc_errors_corrected")]
    assert corrected.value == 3.0 and corrected.unit == "count"
    assert corrected.labels == {"device": "0", "counter": "volatile"}
    assert got[("0", "gpu.ecc_errors_uncorrected")].value == 0.0
    assert {(d, m) for d, m in got if m.startswith("gpu.ecc")} == {
        ("0", "gpu.ecc_errors_corrected"),
        ("0", "gpu.ecc_errors_uncorrected"),
    }  # ECC off on device 1: skipped, the rest of it still reported
    assert {m for d, m in got if d == "1"} >= BASIC_FIELDS | NEW_FIELDS
    assert set(fake.ecc_calls) == {(0, 0), (1, 0)}  # corrected and uncorrected, volatile counter


def test_xid_events_are_counted_per_device_and_reported_with_their_code() -> None:
    fake = HealthNvml([dict(HEALTHY), dict(HEALTHY), dict(HEALTHY)], register_error={2: NVMLError_NoPermission(4)})
    col = NvmlCollector(nvml=fake, detail_every_s=0)
    assert fake.registered == [0, 1]
    got = by_key(list(col.collect()))
    assert got[("0", "gpu.xid_errors")].value == 0.0 and got[("1", "gpu.xid_errors")].value == 0.0
    assert got[("0", "gpu.xid_errors")].labels == {"device": "0", "counter": "since_collector_start"}
    assert ("2", "gpu.xid_errors") not in got  # registration failed: no XID figures for it
    fake.xid(1, 79)
    fake.xid(1, 48)
    readings = list(col.collect())
    xids = [(r.labels["device"], r.value, r.unit) for r in readings if r.metric == "gpu.xid"]
    assert xids == [("1", 79.0, "code"), ("1", 48.0, "code")]
    counts = {r.labels["device"]: r.value for r in readings if r.metric == "gpu.xid_errors"}
    assert counts == {"0": 0.0, "1": 2.0}
    assert not [r for r in col.collect() if r.metric == "gpu.xid"]  # drained: reported once
    col.close()
    assert fake.freed == 1 and fake.shutdown_calls == 1


def test_slow_fields_and_health_counters_follow_their_own_period() -> None:
    fake = HealthNvml([HEALTHY])
    col = NvmlCollector(nvml=fake, detail_every_s=3600)
    first = by_key(list(col.collect()))
    second = by_key(list(col.collect()))
    per_tick = {"gpu.utilization", "gpu.memory_used_mb", "gpu.power_w", "gpu.energy_j"}
    health = {"gpu.ecc_errors_corrected", "gpu.ecc_errors_uncorrected", "gpu.xid_errors"}
    assert {m for _, m in first} == BASIC_FIELDS | NEW_FIELDS | health  # the first call reads everything
    assert {m for _, m in second} == per_tick
    assert {r.interval_s for (_, m), r in first.items() if m in per_tick} == {None}  # the sampler's interval
    assert {r.interval_s for (_, m), r in first.items() if m not in per_tick} == {3600.0}


def test_a_library_without_event_sets_or_ecc_still_reports_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenEvents(HealthNvml):
        def nvmlEventSetCreate(self) -> str:
            raise NVMLError_NotSupported(3)

    with caplog.at_level(logging.INFO, logger="gemmawatch.collectors.telemetry.nvml"):
        col = NvmlCollector(nvml=BrokenEvents([HEALTHY]), detail_every_s=0)
        metrics = {m for _, m in by_key(list(col.collect()))}
    assert "gpu.xid_errors" not in metrics and "gpu.ecc_errors_corrected" in metrics
    assert any("XID" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    col.close()
