"""One telemetry observation, independent of where it is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Bytes per "MB" in every ``*_mb`` metric. We use MiB (2**20) like ``nvidia-smi``
#: and ``free -m``, so host, process and GPU memory figures are comparable.
BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Reading:
    """A single value read by a collector at one instant.

    Attributes:
        source: Where the value comes from (``"psutil"``, ``"nvml"``); stored as
            ``TelemetrySample.source``.
        metric: Dotted metric name, e.g. ``"cpu.percent"`` or ``"gpu.power_w"``.
        value: The observation as a float.
        unit: Unit symbol (``"%"``, ``"MB"``, ``"W"``, ``"C"``, ``"bool"``).
        labels: Extra dimensions (``{"device": "0"}``, ``{"pid": 123}``); JSON-serialisable.
        interval_s: How often the collector refreshes this value, when that is
            slower than every call (per-core CPU, load average and IO rates
            are read once a second); the sampler stores the larger of this and
            its own interval. ``None``: every call.
    """

    source: str
    metric: str
    value: float
    unit: str
    labels: dict[str, Any] = field(default_factory=dict)
    interval_s: float | None = None
