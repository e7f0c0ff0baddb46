"""Scrape a Prometheus text endpoint (vLLM, llama.cpp server, DCGM exporter) into readings.

An inference server's own metrics (queue depth, KV-cache usage, TTFT) explain
what the host and GPU collectors only show as load, so a run can sample them
next to psutil and NVML::

    collectors = [*default_collectors(), PrometheusCollector("http://127.0.0.1:8000/metrics")]
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import math
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from gemmawatch.collectors.telemetry.reading import Reading
from gemmawatch.errors import ConfigError, GemmawatchError, MissingDependencyError, one_line

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: The default allow-list: the metrics of vLLM, llama.cpp server and the DCGM
#: exporter that explain a serving run. Histograms contribute ``_sum`` and
#: ``_count`` (mean = delta sum / delta count over a window), never ``_bucket``.
DEFAULT_ENGINE_METRICS: tuple[str, ...] = (
    # vLLM
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:gpu_cache_usage_perc",  # vLLM V0 name
    "vllm:kv_cache_usage_perc",  # vLLM V1 name of the same figure
    "vllm:time_to_first_token_seconds",
    "vllm:time_per_output_token_seconds",
    "vllm:inter_token_latency_seconds",  # newer vLLM's name for the per-output-token histogram
    "vllm:e2e_request_latency_seconds",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    # llama.cpp server (``--metrics``)
    "llamacpp:*",
    # NVIDIA DCGM exporter
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
)

#: Units of names whose suffix does not say it (or says it wrongly).
_KNOWN_UNITS: dict[str, str] = {
    "DCGM_FI_DEV_GPU_UTIL": "%",
    "DCGM_FI_DEV_FB_USED": "MB",  # DCGM reports MiB, the same MB as BYTES_PER_MB
    "DCGM_FI_DEV_FB_FREE": "MB",
    "DCGM_FI_DEV_POWER_USAGE": "W",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "mJ",
    "DCGM_FI_DEV_GPU_TEMP": "C",
    "DCGM_FI_DEV_SM_CLOCK": "MHz",
    "DCGM_FI_DEV_MEM_CLOCK": "MHz",
    # llama.cpp gauges of average throughput: "_seconds" here means "per second".
    "llamacpp:prompt_tokens_seconds": "tokens/s",
    "llamacpp:predicted_tokens_seconds": "tokens/s",
}

_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_seconds", "s"),
    ("_bytes", "B"),
    ("_perc", "1"),
    ("_ratio", "1"),
)

#: Samples kept only when a pattern naming them explicitly allows them: buckets
#: multiply the row count by the number of buckets, and ``_created`` is a
#: creation timestamp rather than a measurement.
_OPT_IN_SUFFIXES = ("_bucket", "_created")

_URL_HINT = "expected http(s)://host:port/metrics"


class ScrapeError(GemmawatchError):
    """A metrics endpoint could not be read or parsed (one line, naming the URL)."""


def unit_for(name: str) -> str:
    """The unit of a Prometheus sample, inferred from its name.

    ``_seconds`` -> ``"s"``, ``_bytes`` -> ``"B"``, ``_perc`` / ``_ratio`` ->
    ``"1"``, ``_total`` -> ``"count"`` (or the unit before it:
    ``..._seconds_total`` is ``"s"``), histogram ``_count`` / ``_bucket`` ->
    ``"count"``, ``_sum`` -> the unit of the histogram; a few DCGM and
    llama.cpp names are known explicitly; anything else is ``""``.
    """
    if name in _KNOWN_UNITS:
        return _KNOWN_UNITS[name]
    for suffix in ("_count", "_bucket"):
        if name.endswith(suffix):
            return "count"
    if name.endswith("_sum"):
        return unit_for(name[: -len("_sum")])
    total = name.endswith("_total")
    base = name[: -len("_total")] if total else name
    for suffix, unit in _SUFFIX_UNITS:
        if base.endswith(suffix):
            return unit
    return "count" if total else ""


def _display_url(url: str) -> str:
    """``url`` without user:password, for labels and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _validate_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except (ValueError, TypeError, AttributeError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Invalid metrics URL '{one_line(str(url))}': {_URL_HINT}")
    return url


def _httpx() -> Any:
    try:
        return importlib.import_module("httpx")
    except ImportError as exc:
        raise MissingDependencyError(
            "PrometheusCollector needs the Python package 'httpx'. Fix: pip install 'gemmawatch[http]'"
        ) from exc


class PrometheusCollector:
    """Scrapes one Prometheus text exposition endpoint on every ``collect()``.

    Each sample of an allowed metric family becomes a :class:`Reading`:
    ``metric`` is the sample name (``vllm:time_to_first_token_seconds_sum``),
    ``unit`` comes from :func:`unit_for`, and ``labels`` are the sample's
    labels, then ``labels`` given here (these win on a clash), then
    ``endpoint`` = the URL (without any user:password). Samples whose value is
    NaN or infinite are omitted, as the Collector contract asks.

    ``allow`` holds metric names or :mod:`fnmatch` patterns (``"llamacpp:*"``);
    a sample is kept when a pattern matches its family name (``vllm:prompt_tokens``)
    or its sample name (``vllm:prompt_tokens_total``). Histogram ``_bucket`` and
    ``_created`` samples are kept only when a matching pattern itself contains
    ``_bucket`` / ``_created`` (``"*_bucket"``), so ``["*"]`` means every
    metric without buckets. ``None`` uses :data:`DEFAULT_ENGINE_METRICS`.

    Counters and histogram sums are cumulative since the server started: derive
    rates and means from differences between samples, never from one value.

    A failed request, a non-2xx answer or an unparsable body raises one
    :class:`ScrapeError` from ``collect()`` (the sampler catches, logs and
    counts it); an endpoint that exposes none of the allowed metrics yields
    nothing and logs that once at INFO. The HTTP client lives on the instance;
    ``close()`` releases it (the collector is also a context manager).

    Args:
        url: The endpoint, ``http(s)://host:port/metrics``.
        allow: Allowed metric names or patterns; ``None`` = the defaults.
        timeout_s: Timeout of each scrape (connect and read), in seconds.
        source: Stored as every row's ``source``.
        labels: Extra labels put on every reading (e.g. ``{"server": "vllm"}``).

    Raises:
        ConfigError: ``url`` is not an http(s) URL, ``allow`` is empty, or
            ``timeout_s`` is not positive.
        MissingDependencyError: httpx is not installed.
    """

    def __init__(
        self,
        url: str,
        *,
        allow: Iterable[str] | None = None,
        timeout_s: float = 2.0,
        source: str = "prometheus",
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = _validate_url(url)
        self.endpoint = _display_url(url)
        if isinstance(allow, str):
            allow = (allow,)
        self.allow: tuple[str, ...] = DEFAULT_ENGINE_METRICS if allow is None else tuple(allow)
        if not self.allow:
            raise ConfigError(
                "PrometheusCollector allow-list is empty. Fix: pass None for the default engine metrics, "
                "or ['*'] for every metric"
            )
        if not timeout_s > 0:
            raise ConfigError(f"PrometheusCollector timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.source = source
        self.labels: dict[str, Any] = dict(labels or {})
        module = _httpx()
        self._client: httpx.Client = module.Client(
            timeout=self.timeout_s,
            # Ask for the classic text format: OpenMetrics is a different grammar.
            headers={"Accept": "text/plain; version=0.0.4"},
            follow_redirects=True,
        )
        self._httpx_error: type[Exception] = module.HTTPError
        self._empty_logged = False
        self._closed = False

    def collect(self) -> Iterable[Reading]:
        """Scrape the endpoint once; see the class docstring for filtering and errors."""
        body = self._fetch()
        try:
            readings = self._parse(body)
        except Exception as exc:  # the parser raises ValueError, IndexError, ... on bad input
            raise ScrapeError(f"Cannot parse metrics from '{self.endpoint}': {self._reason(exc)}") from exc
        if not readings and not self._empty_logged:
            self._empty_logged = True
            log.info("metrics endpoint %s exposes none of the allowed metrics (%s)", self.endpoint, self._allow_text())
        return readings

    def _fetch(self) -> str:
        if self._closed:
            raise ScrapeError(f"Cannot scrape metrics from '{self.endpoint}': the collector was closed")
        try:
            response = self._client.get(self.url)
        except self._httpx_error as exc:
            raise ScrapeError(f"Cannot scrape metrics from '{self.endpoint}': {self._reason(exc)}") from exc
        if not response.is_success:
            raise ScrapeError(
                f"Metrics endpoint '{self.endpoint}' answered HTTP {response.status_code} "
                f"{one_line(response.reason_phrase)}".rstrip()
            )
        return response.text

    def _parse(self, body: str) -> list[Reading]:
        out: list[Reading] = []
        for family in text_string_to_metric_families(body):
            family_ok = self._matches(family.name)
            for sample in family.samples:
                if not self._allowed(family_ok, sample.name):
                    continue
                value = float(sample.value)
                if not math.isfinite(value):
                    continue
                labels = {**sample.labels, **self.labels, "endpoint": self.endpoint}
                out.append(Reading(self.source, sample.name, value, unit_for(sample.name), labels))
        return out

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allow)

    def _allowed(self, family_ok: bool, sample_name: str) -> bool:
        suffix = next((s for s in _OPT_IN_SUFFIXES if sample_name.endswith(s)), None)
        if suffix is None:
            return family_ok or self._matches(sample_name)
        return any(suffix in pattern and fnmatch.fnmatchcase(sample_name, pattern) for pattern in self.allow)

    def _allow_text(self) -> str:
        shown = ", ".join(self.allow[:5])
        return shown + (f", ... ({len(self.allow)} patterns)" if len(self.allow) > 5 else "")

    @staticmethod
    def _reason(exc: BaseException) -> str:
        text = one_line(str(exc))
        return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__

    def close(self) -> None:
        """Close the HTTP client; ``collect()`` raises ScrapeError afterwards."""
        self._closed = True
        self._client.close()

    def __enter__(self) -> PrometheusCollector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrometheusCollector({self.endpoint!r}, source={self.source!r})"
