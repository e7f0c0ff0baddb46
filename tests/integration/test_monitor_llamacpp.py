"""The monitor against a REAL llama.cpp server on the bundled Gemma, behind a TCP forwarder we control:
probes with TTFT/E2E stored, telemetry stored, /metrics served; the server stops -> probes record up=0 and
endpoint-down fires; a new server takes over the address -> the alert resolves."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from http_servers import free_port, llama_cpp_server
from monitor_support import FakeEndpointDown, TcpForwarder, probe_rows, scrape, stored, total, wait_for

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.collectors.monitor import Monitor, MonitorSummary, parse_monitor_config, run_monitor
from gemmawatch.collectors.monitor.writer import SqlStore, Store
from gemmawatch.storage.engine import get_engine

pytestmark = pytest.mark.model


def _has_series_engine() -> bool:
    import gemmawatch.alerts.engine as engine

    return hasattr(engine, "evaluate_series")


def _transitions(monitor: Monitor, state: str, target: str) -> list[dict[str, Any]]:
    return [
        t
        for t in list(monitor.summary.alert_transitions)
        if t.get("state") == state and target in (t.get("target"), t.get("alert_id"))
    ]


def test_monitor_against_a_real_llama_cpp_server(tmp_path: Path, sqlite_url: str) -> None:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (extra 'llamacpp')")
    port = free_port()
    holder: dict[str, Monitor] = {}
    result: dict[str, MonitorSummary | BaseException] = {}
    real_alerts = _has_series_engine()
    store_factory = None
    if not real_alerts:  # until the alert engine's evaluate_series lands, a stand-in with the same rule

        def store_factory(config: dict[str, Any], targets: list[TargetInfo]) -> Store:
            store = SqlStore.open(
                get_engine(sqlite_url), host="llama-host", config=config, targets=targets, label=None, alerts=False
            )
            store.evaluator = FakeEndpointDown(window_s=3.0)
            return store

    with contextlib.ExitStack() as stack:
        forwarder = stack.enter_context(TcpForwarder())
        first = stack.enter_context(contextlib.ExitStack())
        forwarder.upstream = urlsplit(first.enter_context(llama_cpp_server())).port
        cfg = parse_monitor_config(
            f"""
host: llama-host
metrics_port: {port}
targets:
  edge: {{backend: openai, model: gemma3-270m, base_url: "{forwarder.base_url()}"}}
probes:
  - name: capital
    target: edge
    schedule: {{every: 1s}}
    prompts: ["The capital of France is", "Water boils at"]
    max_new_tokens: 6
    timeout_s: 30s
telemetry: {{every: 1s}}
buffer: {{flush_every: 0.5s}}
backoff: {{initial: 0.5s, max: 1s}}
alerts:
  every: 0.5s
  rules:   # endpoint-down with a 3 s window instead of 1 min, so the test takes seconds
    - {{name: endpoint-down, source: telemetry, metric: probe.up, aggregation: max, window: 3s,
       comparator: "<", threshold: 1, group_by: [target], severity: critical}}
""",
            str(tmp_path / "monitor.yaml"),
        )

        def run() -> None:
            try:
                result["summary"] = run_monitor(
                    cfg, db_url=sqlite_url, store_factory=store_factory, on_start=lambda m: holder.update(m=m)
                )
            except BaseException as exc:
                result["error"] = exc

        thread = threading.Thread(target=run, name="monitor-under-test", daemon=True)
        thread.start()
        try:
            wait_for(lambda: "m" in holder or bool(result), 30, "the monitor to start")
            monitor = holder["m"]
            wait_for(lambda: monitor.summary.probes_ok >= 2, 60, "two answered probes")
            metrics = scrape(f"http://127.0.0.1:{port}/metrics")
            assert total(metrics, "gemmawatch_monitor_probe_ttft_seconds_count", target="edge") >= 2
            assert total(metrics, "gemmawatch_monitor_target_up", target="edge") == 1

            first.close()  # the real server stops
            forwarder.drop_all()
            wait_for(lambda: monitor.summary.probes_failed >= 1, 30, "a failed probe")
            wait_for(lambda: bool(_transitions(monitor, "firing", "edge")), 30, "endpoint-down to fire")
            assert total(scrape(f"http://127.0.0.1:{port}/metrics"), "gemmawatch_monitor_alerts_firing") >= 1

            second = stack.enter_context(llama_cpp_server())  # a new server behind the same address
            forwarder.upstream = urlsplit(second).port
            wait_for(lambda: bool(_transitions(monitor, "resolved", "edge")), 90, "endpoint-down to resolve")
        finally:
            if "m" in holder:
                holder["m"].stop()
            thread.join(timeout=60)
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert isinstance(summary, MonitorSummary)
    assert summary.status == "completed" and summary.alerts_firing == 0
    assert any(t["rule"] == "endpoint-down" for t in summary.alert_transitions)

    data = stored(sqlite_url)
    (run_row,) = data["runs"]
    assert run_row["kind"] == "monitor" and run_row["status"] == "completed" and run_row["host"] == "llama-host"
    rows = data["telemetry"]
    up = sorted(probe_rows(rows, "probe.up", target="edge", probe="capital"), key=lambda r: r["ts"])
    values = [r["value"] for r in up]
    assert values[0] == 1.0 and 0.0 in values and values[-1] == 1.0
    assert all(r["labels"].get("error_class") for r in up if r["value"] == 0.0)
    ttft = [r["value"] for r in probe_rows(rows, "probe.ttft_s", target="edge")]
    e2e = [r["value"] for r in probe_rows(rows, "probe.e2e_s", target="edge")]
    assert len(ttft) == len(e2e) == summary.probes_ok and all(0 < t <= e for t, e in zip(ttft, e2e, strict=True))
    assert any(r["metric"] == "memory.percent" and r["host"] == "llama-host" for r in rows)
    answered = [s for s in data["samples"] if s["error"] is None]
    assert answered and all(s["output_tokens"] >= 1 and s["ttft_s"] is not None for s in answered)
