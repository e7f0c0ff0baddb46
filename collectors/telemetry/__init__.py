"""Telemetry: collectors of host/process/GPU and inference-server readings and a background sampler.

Typical use around a run::

    engine = get_engine()
    with TelemetrySampler(default_collectors(), sink=storage_sink(engine), run_id=run_id):
        ...  # the work being measured
"""

from __future__ import annotations

from gemmawatch.collectors.telemetry.base import Collector
from gemmawatch.collectors.telemetry.energy import energy_in_window, energy_joules, energy_per_token
from gemmawatch.collectors.telemetry.flatline import FLATLINED_METRIC, FlatlineTracker, flatlined_series
from gemmawatch.collectors.telemetry.host import HostCollector, ProcessCollector
from gemmawatch.collectors.telemetry.nvml import NvmlCollector
from gemmawatch.collectors.telemetry.prometheus import DEFAULT_ENGINE_METRICS, PrometheusCollector, ScrapeError
from gemmawatch.collectors.telemetry.reading import BYTES_PER_MB, Reading
from gemmawatch.collectors.telemetry.sampler import DEFAULT_INTERVAL_S, SamplerStats, Sink, TelemetrySampler
from gemmawatch.collectors.telemetry.sinks import ListSink, storage_sink

__all__ = [
    "BYTES_PER_MB",
    "Collector",
    "DEFAULT_ENGINE_METRICS",
    "DEFAULT_INTERVAL_S",
    "FLATLINED_METRIC",
    "FlatlineTracker",
    "HostCollector",
    "ListSink",
    "NvmlCollector",
    "ProcessCollector",
    "PrometheusCollector",
    "Reading",
    "SamplerStats",
    "ScrapeError",
    "Sink",
    "TelemetrySampler",
    "default_collectors",
    "energy_in_window",
    "energy_joules",
    "energy_per_token",
    "flatlined_series",
    "storage_sink",
]


def default_collectors(pid: int | None = None) -> list[Collector]:
    """Host + process (``pid``, default: this process) + NVML collectors.

    The NVML collector is included even without a GPU: it records
    ``gpu.available = 0`` once, which is how a run says it had no GPU.
    """
    return [HostCollector(), ProcessCollector(pid), NvmlCollector()]
