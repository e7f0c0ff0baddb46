"""NVIDIA GPU telemetry through NVML (``pynvml`` from nvidia-ml-py).

No GPU is a normal state for gemmawatch (CPU-only machines run the bundled
Gemma): the collector then records ``gpu.available = 0`` once and stays quiet.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gemmawatch.collectors.telemetry.reading import BYTES_PER_MB, Reading

log = logging.getLogger(__name__)


class NvmlCollector:
    """Per-GPU utilisation, memory, power and temperature (label ``device``: index as a string).

    Metrics: ``gpu.utilization`` (%), ``gpu.memory_used_mb``, ``gpu.memory_total_mb`` (MB),
    ``gpu.power_w`` (W), ``gpu.temperature_c`` (C), ``gpu.energy_j`` (J),
    ``gpu.sm_clock_mhz``, ``gpu.mem_clock_mhz`` (MHz) and ``gpu.throttle_reasons``
    (``bitmask``). ``nvmlDeviceGetPowerUsage`` is an average over roughly the
    last second on most GPUs rather than an instantaneous value, so power
    readings carry ``power_kind="average"``.

    ``gpu.energy_j`` is NVML's total energy counter (millijoules since the
    driver was loaded, Volta and newer), labelled ``counter="since_driver_load"``:
    only differences between readings mean anything (see
    :func:`~gemmawatch.collectors.telemetry.energy.energy_per_token`), and the
    counter restarts when the driver reloads. ``gpu.throttle_reasons`` is the
    ``nvmlClocksEventReason*`` bitmask as a float (0 = nothing holds the clocks
    back; 0x1 idle, 0x4 software power cap, 0x8 hardware slowdown, 0x20/0x40
    thermal slowdown).

    Read on every call: utilisation, memory used, power and energy (what a
    request's window is attributed). Read every ``detail_every_s`` (1 s by
    default; the rows carry that ``interval_s``): memory total, temperature,
    clocks, throttle reasons and the health counters below, which change slowly
    or are state rather than load; at 10 Hz this halves the rows per GPU.

    Each field is read on its own: one the driver does not support
    (``NVMLError_NotSupported``, common on consumer cards and MIG slices) or
    that fails is skipped for that device only; the rest are still reported.

    When NVML cannot be loaded (no driver, no GPU, pynvml missing) ``available``
    is False, this is logged once at INFO, and the first ``collect()`` yields a
    single ``gpu.available = 0`` reading so the run records that it had no GPU;
    later calls yield nothing.

    Health counters: ``gpu.ecc_errors_corrected`` and
    ``gpu.ecc_errors_uncorrected`` (``count``; NVML's volatile totals, i.e.
    since the driver loaded, labelled ``counter="volatile"``; absent where ECC
    is off or unsupported) and ``gpu.xid_errors`` (``count``; critical XID
    events seen since this collector started, labelled
    ``counter="since_collector_start"``). XIDs come from an NVML event set the
    collector registers every device with (``nvmlEventTypeXidCriticalError``);
    each event also yields one ``gpu.xid`` reading whose value is the XID code
    (79: fallen off the bus, 48: double-bit ECC error, ...). A device that cannot
    be registered (unsupported, no permission) has no XID figures.

    Args:
        nvml: A pynvml-compatible module; ``None`` imports ``pynvml``. Tests pass
            a fake to exercise the parsing paths without a GPU.
        detail_every_s: Period of the slow fields, in seconds (0: every call).
    """

    source = "nvml"

    def __init__(self, nvml: Any = None, *, detail_every_s: float = 1.0) -> None:
        self.available = False
        self.detail_every_s = float(detail_every_s)
        self._nvml: Any = None
        self._absent_reported = False
        self._warned: set[tuple[str, str]] = set()  # (device, metric) already warned about
        self._events: Any = None  # the XID event set, when one could be created
        self._xid_counts: dict[str, int] = {}  # registered device -> XID events seen
        self._next_detail = time.monotonic()
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError:
                log.info("pynvml is not installed; GPU telemetry disabled (pip install nvidia-ml-py)")
                return
        try:
            nvml.nvmlInit()
        except (nvml.NVMLError, OSError) as exc:
            log.info("NVML unavailable (%s); no GPU telemetry on this machine", exc)
            return
        self._nvml = nvml
        self.available = True
        self._register_xid_events()

    def _register_xid_events(self) -> None:
        """Create the XID event set and register every device that supports it."""
        nvml = self._nvml
        create = getattr(nvml, "nvmlEventSetCreate", None)
        xid_type = getattr(nvml, "nvmlEventTypeXidCriticalError", None)
        if create is None or xid_type is None:
            return
        try:
            self._events = create()
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            log.info("NVML event sets unavailable (%s); no XID error counts", exc)
            self._events = None
            return
        for index in range(count):
            try:
                nvml.nvmlDeviceRegisterEvents(nvml.nvmlDeviceGetHandleByIndex(index), xid_type, self._events)
            except nvml.NVMLError as exc:
                log.info("GPU %d cannot report XID events (%s); no XID error counts for it", index, exc)
                continue
            self._xid_counts[str(index)] = 0

    def collect(self) -> Iterable[Reading]:
        """Read every visible GPU; see the class docstring for absent devices and fields."""
        if not self.available:
            if self._absent_reported:
                return []
            self._absent_reported = True
            return [Reading(self.source, "gpu.available", 0.0, "bool")]
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._warn_once("*", "device count", exc)
            return []
        now = time.monotonic()
        detail = now >= self._next_detail
        if detail:
            self._next_detail = max(self._next_detail + self.detail_every_s, now)
        readings: list[Reading] = []
        for index in range(count):
            device = str(index)
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as exc:
                self._warn_once(device, "handle", exc)
                continue
            readings.extend(self._device_readings(device, handle, detail))
            if detail:
                readings.extend(self._ecc_readings(device, handle))
        if detail and self._events is not None:
            readings.extend(self._xid_readings())
        return readings

    def _ecc_readings(self, device: str, handle: Any) -> list[Reading]:
        nvml = self._nvml
        get = getattr(nvml, "nvmlDeviceGetTotalEccErrors", None)
        if get is None:
            return []
        volatile = getattr(nvml, "NVML_VOLATILE_ECC", 0)
        every = self.detail_every_s or None
        out = []
        for kind, error_type in (
            ("corrected", getattr(nvml, "NVML_MEMORY_ERROR_TYPE_CORRECTED", 0)),
            ("uncorrected", getattr(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1)),
        ):
            metric = f"gpu.ecc_errors_{kind}"
            value = self._read(device, metric, partial(get, handle, error_type, volatile))
            if value is not None:
                labels = {"device": device, "counter": "volatile"}
                out.append(Reading(self.source, metric, value, "count", labels, every))
        return out

    def _xid_readings(self) -> list[Reading]:
        """Drain pending XID events (never waits), then report each registered device's count."""
        nvml = self._nvml
        wait = getattr(nvml, "nvmlEventSetWait_v2", None) or nvml.nvmlEventSetWait
        timeout = getattr(nvml, "NVMLError_Timeout", None)
        every = self.detail_every_s or None
        out: list[Reading] = []
        for _ in range(256):  # bounded: a storm of events must not stall the sampler
            try:
                event = wait(self._events, 0)
            except nvml.NVMLError as exc:
                if timeout is None or not isinstance(exc, timeout):
                    self._warn_once("*", "XID events", exc)
                break
            try:
                device = str(int(nvml.nvmlDeviceGetIndex(event.device)))
            except nvml.NVMLError as exc:
                self._warn_once("*", "XID event device", exc)
                continue
            if device in self._xid_counts:
                self._xid_counts[device] += 1
            out.append(Reading(self.source, "gpu.xid", float(event.eventData), "code", {"device": device}))
        for device, seen in self._xid_counts.items():
            labels = {"device": device, "counter": "since_collector_start"}
            out.append(Reading(self.source, "gpu.xid_errors", float(seen), "count", labels, every))
        return out

    def _device_readings(self, device: str, handle: Any, detail: bool) -> list[Reading]:
        nvml = self._nvml
        out: list[Reading] = []
        every = self.detail_every_s or None

        def add(metric: str, unit: str, read: Callable[[], float], slow: bool = False, **extra: str) -> None:
            value = self._read(device, metric, read)
            if value is not None:
                out.append(
                    Reading(self.source, metric, value, unit, {"device": device, **extra}, every if slow else None)
                )

        add("gpu.utilization", "%", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        # One call serves both memory fields; read it once and skip both if it fails.
        mem = self._read(device, "gpu.memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if mem is not None:
            add("gpu.memory_used_mb", "MB", lambda: mem.used / BYTES_PER_MB)
            if detail:
                add("gpu.memory_total_mb", "MB", lambda: mem.total / BYTES_PER_MB, slow=True)
        add("gpu.power_w", "W", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, power_kind="average")
        add(
            "gpu.energy_j",
            "J",
            lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0,
            counter="since_driver_load",
        )
        if not detail:
            return out
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        add("gpu.temperature_c", "C", lambda: nvml.nvmlDeviceGetTemperature(handle, sensor), slow=True)
        sm_clock, mem_clock = getattr(nvml, "NVML_CLOCK_SM", 1), getattr(nvml, "NVML_CLOCK_MEM", 2)
        add("gpu.sm_clock_mhz", "MHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, sm_clock), slow=True)
        add("gpu.mem_clock_mhz", "MHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, mem_clock), slow=True)
        # NVML 12.x renamed "clocks throttle reasons" to "clocks event reasons"; the old name is an alias.
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        if reasons is not None:
            add("gpu.throttle_reasons", "bitmask", lambda: reasons(handle), slow=True)
        return out

    def _read(self, device: str, metric: str, read: Callable[[], Any]) -> Any:
        """Call one NVML getter; ``None`` when the field is unsupported or fails."""
        nvml = self._nvml
        try:
            value = read()
        except nvml.NVMLError as exc:
            not_supported = getattr(nvml, "NVMLError_NotSupported", None)
            if not_supported is not None and isinstance(exc, not_supported):
                # Expected on many boards: stay quiet beyond a debug line.
                if (device, metric) not in self._warned:
                    self._warned.add((device, metric))
                    log.debug("GPU %s does not support %s; skipping it", device, metric)
            else:
                self._warn_once(device, metric, exc)
            return None
        if isinstance(value, int | float):
            return float(value)
        return value

    def _warn_once(self, device: str, what: str, exc: BaseException) -> None:
        if (device, what) in self._warned:
            return
        self._warned.add((device, what))
        log.warning("NVML failed reading %s for GPU %s (%s); skipping it", what, device, exc)

    def close(self) -> None:
        """Release NVML (``nvmlShutdown``); the collector is unavailable afterwards."""
        if self.available and self._nvml is not None:
            if self._events is not None:
                try:
                    self._nvml.nvmlEventSetFree(self._events)
                except self._nvml.NVMLError as exc:
                    log.debug("nvmlEventSetFree failed: %s", exc)
                self._events = None
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvmlShutdown failed: %s", exc)
        self.available = False
        self._absent_reported = True  # a closed collector must not claim "no GPU"
