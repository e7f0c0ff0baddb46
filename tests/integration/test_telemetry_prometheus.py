"""PrometheusCollector against real exposition endpoints served on 127.0.0.1."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client
import pytest
from http_servers import free_port
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gemmawatch.collectors.telemetry import (
    Collector,
    HostCollector,
    ListSink,
    PrometheusCollector,
    Reading,
    ScrapeError,
    TelemetrySampler,
    storage_sink,
)
from gemmawatch.collectors.telemetry.prometheus import unit_for
from gemmawatch.errors import ConfigError
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import telemetry as teq


@dataclass
class Exposition:
    url: str
    running: Gauge
    prompt_tokens: Counter
    ttft: Histogram


@pytest.fixture
def exposition() -> Iterator[Exposition]:
    """A vLLM-like /metrics endpoint (plus a DCGM gauge and noise) on a fresh registry."""
    reg = CollectorRegistry()
    running = Gauge("vllm:num_requests_running", "Requests on the GPU.", ["model_name"], registry=reg)
    running.labels(model_name="gemma-3-270m").set(3)
    Gauge("vllm:kv_cache_usage_perc", "KV-cache usage.", registry=reg).set(0.25)
    Gauge("vllm:gpu_cache_usage_perc", "Not measured yet.", registry=reg).set(math.nan)
    prompt_tokens = Counter("vllm:prompt_tokens", "Prefill tokens.", registry=reg)  # exposed as ..._total
    prompt_tokens.inc(120)
    ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT.", buckets=(0.01, 0.1, 1.0), registry=reg)
    ttft.observe(0.05)
    ttft.observe(0.2)
    Gauge("DCGM_FI_DEV_POWER_USAGE", "Power draw.", ["gpu"], registry=reg).labels(gpu="0").set(250.5)
    Gauge("unrelated_queue_depth", "Not an engine metric.", registry=reg).set(7)
    Gauge("process_resident_memory_bytes", "RSS.", registry=reg).set(1024)
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=reg)
    try:
        port = server.server_address[1]
        yield Exposition(f"http://127.0.0.1:{port}/metrics", running, prompt_tokens, ttft)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    """``/500`` answers 500; ``/garbage`` answers 200 with a body that is not the text format."""

    def do_GET(self) -> None:
        if self.path == "/garbage":
            body, status = b'vllm:num_requests_running{model_name="x" 3\n', 200
        else:
            body, status = b"boom", 500
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bad_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def by_metric(readings: list[Reading]) -> dict[str, Reading]:
    got = {r.metric: r for r in readings}
    assert len(got) == len(readings), "one sample per metric name expected in these tests"
    return got


def test_default_allow_list_reads_engine_metrics_with_units_and_labels(exposition: Exposition) -> None:
    with PrometheusCollector(exposition.url) as col:
        assert isinstance(col, Collector)
        got = by_metric(list(col.collect()))
    assert set(got) == {
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:time_to_first_token_seconds_sum",
        "vllm:time_to_first_token_seconds_count",
        "DCGM_FI_DEV_POWER_USAGE",
    }  # no buckets, no _created, no NaN gauge, nothing outside the allow-list
    running = got["vllm:num_requests_running"]
    assert (running.source, running.value, running.unit) == ("prometheus", 3.0, "")
    assert running.labels == {"model_name": "gemma-3-270m", "endpoint": exposition.url}
    assert (got["vllm:kv_cache_usage_perc"].value, got["vllm:kv_cache_usage_perc"].unit) == (0.25, "1")
    assert (got["vllm:prompt_tokens_total"].value, got["vllm:prompt_tokens_total"].unit) == (120.0, "count")
    ttft_sum = got["vllm:time_to_first_token_seconds_sum"]
    assert ttft_sum.value == pytest.approx(0.25) and ttft_sum.unit == "s"
    ttft_count = got["vllm:time_to_first_token_seconds_count"]
    assert (ttft_count.value, ttft_count.unit) == (2.0, "count")
    power = got["DCGM_FI_DEV_POWER_USAGE"]
    assert (power.value, power.unit, power.labels) == (250.5, "W", {"gpu": "0", "endpoint": exposition.url})


def test_every_collect_reads_the_current_values(exposition: Exposition) -> None:
    col = PrometheusCollector(exposition.url, allow=["vllm:num_requests_running", "vllm:prompt_tokens_total"])
    first = by_metric(list(col.collect()))
    exposition.running.labels(model_name="gemma-3-270m").set(5)
    exposition.prompt_tokens.inc(30)
    second = by_metric(list(col.collect()))
    col.close()
    assert first["vllm:num_requests_running"].value == 3.0 and second["vllm:num_requests_running"].value == 5.0
    assert second["vllm:prompt_tokens_total"].value == 150.0


def test_allow_list_patterns_family_names_and_bucket_opt_in(exposition: Exposition) -> None:
    def metrics(allow: list[str]) -> set[str]:
        with PrometheusCollector(exposition.url, allow=allow) as col:
            return {r.metric for r in col.collect()}

    assert metrics(["vllm:num_*"]) == {"vllm:num_requests_running"}
    # A counter matches by family name (without _total) as well as by sample name.
    assert metrics(["vllm:prompt_tokens"]) == metrics(["vllm:prompt_tokens_total"]) == {"vllm:prompt_tokens_total"}
    everything = metrics(["*"])
    assert {"unrelated_queue_depth", "process_resident_memory_bytes", "vllm:num_requests_running"} <= everything
    assert not [m for m in everything if m.endswith(("_bucket", "_created"))]
    with_buckets = metrics(["vllm:time_to_first_token_seconds", "*_bucket"])
    assert with_buckets == {
        "vllm:time_to_first_token_seconds_sum",
        "vllm:time_to_first_token_seconds_count",
        "vllm:time_to_first_token_seconds_bucket",
    }
    assert metrics(["nothing_like_this"]) == set()


def test_bucket_rows_carry_le_and_counts(exposition: Exposition) -> None:
    with PrometheusCollector(exposition.url, allow=["vllm:time_to_first_token_seconds_bucket"]) as col:
        buckets = {r.labels["le"]: r for r in col.collect()}
    assert set(buckets) == {"0.01", "0.1", "1.0", "+Inf"}
    assert [buckets[le].value for le in ("0.01", "0.1", "1.0", "+Inf")] == [0.0, 1.0, 2.0, 2.0]
    assert {r.unit for r in buckets.values()} == {"count"}


def test_source_and_extra_labels(exposition: Exposition) -> None:
    with PrometheusCollector(
        exposition.url, allow=["DCGM_*"], source="dcgm", labels={"gpu": "overridden", "server": "node-a"}
    ) as col:
        (reading,) = col.collect()
    assert reading.source == "dcgm"
    assert reading.labels == {"gpu": "overridden", "server": "node-a", "endpoint": exposition.url}


def test_credentials_in_the_url_stay_out_of_labels(exposition: Exposition) -> None:
    secret_url = exposition.url.replace("http://", "http://scraper:s3cret@")
    with PrometheusCollector(secret_url, allow=["vllm:num_*"]) as col:
        (reading,) = col.collect()
        assert "s3cret" not in repr(col)
    assert reading.labels["endpoint"] == exposition.url


def test_sampler_stores_scraped_rows_in_the_database(exposition: Exposition, sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        run_id = rq.create_run(s, kind="eval", target_id=None, config={}, host="h", versions={})
    col = PrometheusCollector(exposition.url)
    with TelemetrySampler(
        [col], interval_s=0.05, sink=storage_sink(engine), run_id=run_id, flush_every_s=0.2
    ) as sampler:
        time.sleep(0.3)
        exposition.running.labels(model_name="gemma-3-270m").set(5)
        time.sleep(0.3)
    col.close()
    stats = sampler.stats
    assert stats.collector_errors == 0 and stats.sink_errors == 0 and stats.rows_emitted > 0
    with session_scope(engine) as s:
        rows = teq.telemetry_for_run(s, run_id)
        summary = {r["metric"]: r for r in teq.telemetry_summary(s, run_id)}
    assert len(rows) == stats.rows_emitted
    running = summary["vllm:num_requests_running"]
    assert running["source"] == "prometheus" and running["unit"] == ""
    assert (running["min"], running["max"]) == (3.0, 5.0)
    assert summary["vllm:time_to_first_token_seconds_sum"]["unit"] == "s"
    assert running["n"] == summary["vllm:prompt_tokens_total"]["n"] == stats.samples
    stored = next(r for r in rows if r["metric"] == "vllm:num_requests_running")
    assert stored["labels"] == {"model_name": "gemma-3-270m", "endpoint": exposition.url}
    assert not [r for r in rows if r["metric"].endswith("_bucket")]


def test_unreachable_endpoint_raises_one_line_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    col = PrometheusCollector(url, timeout_s=1.0)
    with pytest.raises(ScrapeError) as info:
        col.collect()
    message = str(info.value)
    assert url in message and "\n" not in message and "ConnectError" in message
    col.close()


def test_unreachable_endpoint_is_counted_by_the_sampler_and_others_keep_running() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    sink = ListSink()
    col = PrometheusCollector(url, timeout_s=0.5)
    with TelemetrySampler([col, HostCollector()], interval_s=0.05, sink=sink, flush_every_s=0.1) as sampler:
        time.sleep(0.3)
    col.close()
    stats = sampler.stats
    assert stats.samples >= 2 and stats.collector_errors == stats.samples
    assert sink.rows and {r["source"] for r in sink.rows} == {"psutil"}


def test_http_error_and_unparsable_body(bad_server: str) -> None:
    with PrometheusCollector(f"{bad_server}/500") as col, pytest.raises(ScrapeError, match="HTTP 500") as info:
        col.collect()
    assert f"{bad_server}/500" in str(info.value)
    with (
        PrometheusCollector(f"{bad_server}/garbage", allow=["*"]) as col,
        pytest.raises(ScrapeError, match="Cannot parse metrics") as info,
    ):
        col.collect()
    message = str(info.value)
    assert f"{bad_server}/garbage" in message and "\n" not in message


def test_closed_collector_raises_scrape_error(exposition: Exposition) -> None:
    col = PrometheusCollector(exposition.url)
    col.close()
    with pytest.raises(ScrapeError, match="closed"):
        col.collect()


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/metrics", "127.0.0.1:8000/metrics", "localhost:8000/metrics", "http:///metrics", "metrics", ""],
)
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        PrometheusCollector(url)
    assert str(info.value) == f"Invalid metrics URL '{url}': expected http(s)://host:port/metrics"


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="allow-list is empty"):
        PrometheusCollector("http://127.0.0.1:1/metrics", allow=[])
    with pytest.raises(ConfigError, match="timeout_s"):
        PrometheusCollector("http://127.0.0.1:1/metrics", timeout_s=0)


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("vllm:num_requests_running", ""),
        ("vllm:kv_cache_usage_perc", "1"),
        ("llamacpp:kv_cache_usage_ratio", "1"),
        ("vllm:e2e_request_latency_seconds_sum", "s"),
        ("vllm:e2e_request_latency_seconds_count", "count"),
        ("vllm:e2e_request_latency_seconds_bucket", "count"),
        ("vllm:generation_tokens_total", "count"),
        ("llamacpp:prompt_seconds_total", "s"),
        ("llamacpp:predicted_tokens_seconds", "tokens/s"),
        ("process_resident_memory_bytes", "B"),
        ("DCGM_FI_DEV_POWER_USAGE", "W"),
        ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "mJ"),
        ("DCGM_FI_DEV_GPU_UTIL", "%"),
        ("DCGM_FI_DEV_FB_USED", "MB"),
    ],
)
def test_unit_inferred_from_the_name(name: str, unit: str) -> None:
    assert unit_for(name) == unit
