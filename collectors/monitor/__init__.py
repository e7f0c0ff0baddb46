"""The production monitor: scheduled canary probes, scrapes, telemetry and alerts (``gemmawatch monitor``).

Modules, one concept each: ``config`` (monitor.yaml), ``schedule`` (intervals,
cron), ``ratelimit`` (token bucket per target), ``endpoint`` (a target with its
backoff), ``probes`` (one probe -> rows), ``checks`` (safety checks on outputs),
``buffer`` (bounded rows in memory), ``writer`` (database writes that survive
outages), ``alerting`` (series alert evaluation), ``exposition`` (the monitor's
own /metrics), ``daemon`` (the loop) and ``service`` (:func:`run_monitor`).
"""

from __future__ import annotations

from gemmawatch.collectors.monitor.config import EXAMPLE, MonitorConfig, load_monitor_config, parse_monitor_config
from gemmawatch.collectors.monitor.daemon import Monitor, MonitorSummary
from gemmawatch.collectors.monitor.service import run_monitor

__all__ = [
    "EXAMPLE",
    "Monitor",
    "MonitorConfig",
    "MonitorSummary",
    "load_monitor_config",
    "parse_monitor_config",
    "run_monitor",
]
