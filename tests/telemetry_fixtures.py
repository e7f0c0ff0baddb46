"""Monitoring data for the Overview and Telemetry pages, stored through ``gemmawatch.storage.queries``.

``add_probes``: canary probe telemetry as the monitor writes it (source ``probe``, ``probe.up`` /
``probe.e2e_s`` with label ``target``), one target answering and one failing its last probes, in
the last few minutes. ``add_live_telemetry``: host and GPU readings of the last ``minutes``
minutes, outside any run (the monitor's host sampler).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries.telemetry import add_telemetry

#: target -> index of its first failing probe (probes 0..PROBES-1, every PROBE_INTERVAL_S).
PROBE_TARGETS = {"gemma-prod": None, "gemma-canary": 8}
PROBES = 10
PROBE_INTERVAL_S = 30.0
HOST = "monitor-host"
#: Host and GPU metrics of :func:`add_live_telemetry`: metric -> (source, unit).
LIVE_METRICS = {
    "cpu.percent": ("psutil", "%"),
    "memory.used_mb": ("psutil", "MB"),
    "gpu.utilization": ("nvml", "%"),
    "gpu.memory_used_mb": ("nvml", "MB"),
}


def add_probes(url: str, *, now: datetime | None = None) -> dict[str, bool]:
    """Store PROBES probes per target ending now; returns target -> whether its last probe answered."""
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for target, first_failure in PROBE_TARGETS.items():
        for i in range(PROBES):
            ts = now - timedelta(seconds=PROBE_INTERVAL_S * (PROBES - 1 - i))
            ok = first_failure is None or i < first_failure
            labels: dict[str, Any] = {"target": target, "probe": "canary"}
            if not ok:
                labels["error_class"] = "timeout"
            base = {"run_id": None, "host": HOST, "source": "probe", "ts": ts, "interval_s": PROBE_INTERVAL_S}
            rows.append({**base, "metric": "probe.up", "unit": "bool", "value": float(ok), "labels": labels})
            if ok:
                rows.append({**base, "metric": "probe.e2e_s", "unit": "s", "value": 0.4 + 0.01 * i, "labels": labels})
    with session_scope(get_engine(url)) as s:
        add_telemetry(s, rows)
    return {t: f is None for t, f in PROBE_TARGETS.items()}


def add_live_telemetry(url: str, *, minutes: int = 10, interval_s: float = 5.0) -> int:
    """Host and GPU readings every ``interval_s`` over the last ``minutes`` minutes; returns how many."""
    now = datetime.now(UTC)
    steps = int(minutes * 60 / interval_s)
    rows = []
    for k in range(steps):
        ts = now - timedelta(seconds=interval_s * (steps - k))
        for j, (metric, (source, unit)) in enumerate(LIVE_METRICS.items()):
            labels = {"device": "0"} if source == "nvml" else {}
            value = 50 + 40 * math.sin(k / 7 + j)
            rows.append({"run_id": None, "host": HOST, "source": source, "metric": metric, "unit": unit,
                         "value": value, "ts": ts, "interval_s": interval_s, "labels": labels})  # fmt: skip
    with session_scope(get_engine(url)) as s:
        return add_telemetry(s, rows)
