"""NVIDIA GPU telemetry through NVML (``pynvml`` from nvidia-ml-py).

No GPU is a normal state for gemmawatch (CPU-only machines run the bundled
Gemma): the collector then records ``gpu.available = 0`` once and stays quiet.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
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

    Each field is read on its own: one the driver does not support
    (``NVMLError_NotSupported``, common on consumer cards and MIG slices) or
    that fails is skipped for that device only; the rest are still reported.

    When NVML cannot be loaded (no driver, no GPU, pynvml missing) ``available``
    is False, this is logged once at INFO, and the first ``collect()`` yields a
    single ``gpu.available = 0`` reading so the run records that it had no GPU;
    later calls yield nothing.

    Args:
        nvml: A pynvml-compatible module; ``None`` imports ``pynvml``. Tests pass
            a fake to exercise the parsing paths without a GPU.
    """

    source = "nvml"

    def __init__(self, nvml: Any = None) -> None:
        self.available = False
        self._nvml: Any = None
        self._absent_reported = False
        self._warned: set[tuple[str, str]] = set()  # (device, metric) already warned about
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
        readings: list[Reading] = []
        for index in range(count):
            device = str(index)
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as exc:
                self._warn_once(device, "handle", exc)
                continue
            readings.extend(self._device_readings(device, handle))
        return readings

    def _device_readings(self, device: str, handle: Any) -> list[Reading]:
        nvml = self._nvml
        out: list[Reading] = []

        def add(metric: str, unit: str, read: Callable[[], float], **extra: str) -> None:
            value = self._read(device, metric, read)
            if value is not None:
                out.append(Reading(self.source, metric, value, unit, {"device": device, **extra}))

        add("gpu.utilization", "%", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        # One call serves both memory fields; read it once and skip both if it fails.
        mem = self._read(device, "gpu.memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if mem is not None:
            add("gpu.memory_used_mb", "MB", lambda: mem.used / BYTES_PER_MB)
            add("gpu.memory_total_mb", "MB", lambda: mem.total / BYTES_PER_MB)
        add("gpu.power_w", "W", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, power_kind="average")
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        add("gpu.temperature_c", "C", lambda: nvml.nvmlDeviceGetTemperature(handle, sensor))
        add(
            "gpu.energy_j",
            "J",
            lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0,
            counter="since_driver_load",
        )
        sm_clock, mem_clock = getattr(nvml, "NVML_CLOCK_SM", 1), getattr(nvml, "NVML_CLOCK_MEM", 2)
        add("gpu.sm_clock_mhz", "MHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, sm_clock))
        add("gpu.mem_clock_mhz", "MHz", lambda: nvml.nvmlDeviceGetClockInfo(handle, mem_clock))
        # NVML 12.x renamed "clocks throttle reasons" to "clocks event reasons"; the old name is an alias.
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        if reasons is not None:
            add("gpu.throttle_reasons", "bitmask", lambda: reasons(handle))
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
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvmlShutdown failed: %s", exc)
        self.available = False
        self._absent_reported = True  # a closed collector must not claim "no GPU"
