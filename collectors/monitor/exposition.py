"""The monitor's own Prometheus ``/metrics``: how its probes, writes and alerts are doing.

Metrics live in a fresh :class:`~prometheus_client.CollectorRegistry` per
monitor (never the process-global one, so two monitors in one process, or a
test, never share counters). Exposed names:

* ``gemmawatch_monitor_probes_total{target,probe,status}``: status ``ok``, ``error``,
  ``skipped_backoff``, ``skipped_rate_limit`` or ``skipped_busy``;
* ``gemmawatch_monitor_probe_ttft_seconds``, ``gemmawatch_monitor_probe_e2e_seconds``
  (histograms, label ``target``; answered probes only);
* ``gemmawatch_monitor_target_up{target}``: 1/0 after the last probe;
* ``gemmawatch_monitor_buffer_rows``: rows waiting to be written;
* ``gemmawatch_monitor_rows_written_total``, ``gemmawatch_monitor_rows_dropped_total``,
  ``gemmawatch_monitor_write_errors_total``;
* ``gemmawatch_monitor_scrape_errors_total{scrape}``, ``gemmawatch_monitor_alert_errors_total``;
* ``gemmawatch_monitor_alerts_firing``: alerts this monitor last saw firing;
* ``gemmawatch_monitor_last_tick_timestamp_seconds``: end of the last write/alert tick (epoch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from gemmawatch.errors import ConfigError

__all__ = ["LATENCY_BUCKETS", "MetricsServer", "MonitorMetrics"]

#: Seconds; from a fast cached answer to a request that nearly timed out.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class MonitorMetrics:
    """The monitor's counters and gauges in their own registry."""

    def __init__(self, buffer_size: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        p = "gemmawatch_monitor_"
        self.probes = Counter(p + "probes", "Probes by outcome.", ["target", "probe", "status"], registry=r)
        self.ttft = Histogram(
            p + "probe_ttft_seconds", "Probe time to first token.", ["target"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.e2e = Histogram(
            p + "probe_e2e_seconds", "Probe end-to-end latency.", ["target"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.target_up = Gauge(p + "target_up", "1 if the target's last probe succeeded.", ["target"], registry=r)
        self.buffer_rows = Gauge(p + "buffer_rows", "Rows buffered in memory, waiting to be written.", registry=r)
        if buffer_size is not None:
            self.buffer_rows.set_function(buffer_size)
        self.rows_written = Counter(p + "rows_written", "Rows stored in the database.", registry=r)
        self.rows_dropped = Counter(
            p + "rows_dropped", "Rows lost: buffer full (oldest dropped) or rejected by the database.", registry=r
        )
        self.write_errors = Counter(p + "write_errors", "Failed database writes (rows kept for retry).", registry=r)
        self.scrape_errors = Counter(p + "scrape_errors", "Failed scrapes.", ["scrape"], registry=r)
        self.alert_errors = Counter(p + "alert_errors", "Failed alert evaluations.", registry=r)
        self.alerts_firing = Gauge(p + "alerts_firing", "Alerts firing at the last evaluation.", registry=r)
        self.last_tick = Gauge(
            p + "last_tick_timestamp_seconds", "When the last write/alert tick ended (epoch seconds).", registry=r
        )

    def text(self) -> bytes:
        """The current exposition (what ``/metrics`` serves)."""
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` over HTTP on ``host:port`` in a daemon thread; :meth:`close` stops it."""

    def __init__(self, metrics: MonitorMetrics, *, host: str, port: int) -> None:
        try:
            self._server: Any
            self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            raise ConfigError(
                f"Cannot serve the monitor's metrics on {host}:{port}: {exc.strerror or exc}. "
                "Fix: choose another metrics_port (0 turns it off) or metrics_host"
            ) from exc
        self.host = host
        self.port = int(self._server.server_address[1])
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
