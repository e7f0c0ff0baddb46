"""The monitor daemon in process against real HTTP servers (the fault server; no model): probes, telemetry,
scrapes, /metrics, rate limits, target outages with backoff, database outages, alert hooks, config errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from http_servers import FaultServer, free_port
from monitor_support import FakeEndpointDown, OutageStore, probe_rows, scrape, stored, total, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.collectors.monitor import Monitor, MonitorSummary, parse_monitor_config, run_monitor
from gemmawatch.collectors.monitor.writer import SqlStore, Store
from gemmawatch.errors import ConfigError
from gemmawatch.storage.engine import get_engine

FAST = """
host: test-host
telemetry: {every: 0.3s}
buffer: {flush_every: 0.3s}
alerts: {enabled: false}
backoff: {initial: 0.4s, max: 0.8s}
"""


@pytest.fixture(scope="module")
def server() -> Any:
    with FaultServer(token_delay_s=0.002) as srv:
        yield srv


def run(cfg_text: str, db: str, *, duration: float | None = None, once: bool = False, **kw: Any) -> MonitorSummary:
    cfg = parse_monitor_config(FAST + cfg_text, "test-monitor.yaml")
    return run_monitor(cfg, db_url=db, duration_s=duration, once=once, **kw)


def test_probes_telemetry_scrapes_and_metrics(server: FaultServer, sqlite_url: str) -> None:
    port = free_port()
    seen: dict[str, Any] = {}

    def observe(monitor: Monitor) -> None:
        def scrape_later() -> None:
            wait_for(lambda: monitor.summary.probes_ok >= 2, 10, "two probes")
            time.sleep(0.4)  # one more tick
            seen["metrics"] = scrape(f"http://127.0.0.1:{port}/metrics")

        threading.Thread(target=scrape_later, daemon=True).start()

    summary = run(
        f"""
metrics_port: {port}
label: canaries
probes:
  - name: canary
    target: "openai:fake-gemma@{server.base_url("ok")}"
    schedule: {{every: 0.4s}}
    prompts: ["first prompt", "second prompt"]
    max_new_tokens: 4
scrapes:
  - name: self
    url: http://127.0.0.1:{port}/metrics
    every: 0.4s
    allow: ["gemmawatch_monitor_probes_total", "gemmawatch_monitor_buffer_rows"]
""",
        sqlite_url,
        duration=2.2,
        on_start=observe,
    )
    assert summary.status == "completed" and summary.probes_failed == 0 and summary.probes_ok >= 4
    assert summary.rows_unwritten == 0 and summary.rows_dropped == 0

    data = stored(sqlite_url)
    (run_row,) = data["runs"]
    assert run_row["kind"] == "monitor" and run_row["status"] == "completed"
    assert run_row["host"] == "test-host" and run_row["label"] == "canaries"
    assert "database" not in run_row["config"] and run_row["config"]["probes"][0]["name"] == "canary"
    rows = data["telemetry"]
    assert {r["host"] for r in rows} == {"test-host"} and {r["run_id"] for r in rows} == {run_row["id"]}
    target = f"openai:fake-gemma@{server.base_url('ok')}"
    up = probe_rows(rows, "probe.up", target=target, probe="canary")
    assert len(up) == summary.probes_ok and {r["value"] for r in up} == {1.0}
    for metric in ("probe.ttft_s", "probe.e2e_s", "probe.tpot_s", "probe.output_tokens"):
        assert len(probe_rows(rows, metric)) == summary.probes_ok, metric
    assert all(0 < r["value"] < 5 for r in probe_rows(rows, "probe.e2e_s"))
    assert {r["value"] for r in probe_rows(rows, "probe.error")} == {0.0}
    assert {r["interval_s"] for r in up} == {0.4}
    # Host telemetry and the scrape of the monitor's own /metrics, with the allow-list applied.
    assert any(r["metric"] == "memory.percent" for r in rows)
    scraped = [r for r in rows if r["source"] == "prometheus"]
    assert scraped and {r["labels"]["scrape"] for r in scraped} == {"self"}
    assert {r["metric"] for r in scraped} <= {"gemmawatch_monitor_probes_total", "gemmawatch_monitor_buffer_rows"}
    # Samples: the prompts in turn, the answers, the timings.
    samples = sorted(data["samples"], key=lambda s: s["doc_id"])
    assert len(samples) == summary.probes_ok and {s["task"] for s in samples} == {"probe/canary"}
    assert [s["prompt"] for s in samples[:2]] == ["first prompt", "second prompt"]
    assert samples[0]["output"] == "Hello, world from" and samples[0]["ttft_s"] is not None
    assert samples[0]["scores"] == {"target": target, "up": 1}

    metrics = seen["metrics"]
    assert total(metrics, "gemmawatch_monitor_probes_total", status="ok", probe="canary") >= 2
    assert total(metrics, "gemmawatch_monitor_probe_ttft_seconds_count", target=target) >= 2
    assert total(metrics, "gemmawatch_monitor_probe_e2e_seconds_bucket", le="+Inf") >= 2
    assert total(metrics, "gemmawatch_monitor_target_up", target=target) == 1
    assert total(metrics, "gemmawatch_monitor_rows_written_total") > 0
    assert total(metrics, "gemmawatch_monitor_last_tick_timestamp_seconds") > time.time() - 60
    for name in ("buffer_rows", "rows_dropped_total", "write_errors_total", "alerts_firing"):
        assert ("gemmawatch_monitor_" + name, ()) in metrics, name


def test_rate_limit_skips_probes_and_counts_them(server: FaultServer, sqlite_url: str) -> None:
    summary = run(
        f"""
metrics_port: 0
telemetry: {{enabled: false}}
rate_limits: {{max_probes_per_minute: 60, burst: 1}}
probes:
  - {{name: often, target: "openai:m@{server.base_url("ok")}", schedule: {{every: 0.1s}}, prompts: [hi]}}
""",
        sqlite_url,
        duration=1.5,
    )
    # One token a second (plus the initial one) for ~15 fires.
    assert 1 <= summary.probes_ok <= 3 and summary.probes_skipped >= 10
    assert len(probe_rows(stored(sqlite_url)["telemetry"], "probe.up")) == summary.probes_ok


def test_target_outage_backs_off_records_failures_and_recovers(sqlite_url: str) -> None:
    evaluator = FakeEndpointDown(window_s=0.5)

    def store_factory(config: dict[str, Any], targets: list[TargetInfo]) -> Store:
        store = SqlStore.open(
            get_engine(sqlite_url), host="test-host", config=config, targets=targets, label=None, alerts=False
        )
        store.evaluator = evaluator
        return store

    # The first 4 requests fail with HTTP 500, then the server behaves: down, backoff, up again.
    # The monitor runs until the flaky target's alert resolved (and at least 4 s): a busy machine
    # makes everything later, never different.
    timing: dict[str, float] = {}

    def stop_after_recovery(monitor: Monitor) -> None:
        def script() -> None:
            start = time.monotonic()
            def recovered() -> bool:
                resolved = any(t["state"] == "resolved" for t in monitor.summary.alert_transitions)
                return resolved and time.monotonic() - start >= 4.0

            try:
                wait_for(recovered, 60, "the flaky target's alert to resolve")
            finally:
                timing["elapsed"] = time.monotonic() - start
                monitor.stop()

        threading.Thread(target=script, daemon=True).start()

    with FaultServer(fail_times=4, token_delay_s=0.002) as flaky:
        summary = run(
            f"""
metrics_port: 0
telemetry: {{enabled: false}}
alerts: {{every: 0.3s}}
backoff: {{initial: 0.2s, max: 0.4s}}
probes:
  - {{name: p, target: "openai:m@{flaky.base_url("flaky500")}", schedule: {{every: 0.1s}}, prompts: [hi]}}
  - {{name: gone, target: "openai:m@http://127.0.0.1:{free_port()}/v1", schedule: {{every: 0.1s}}, prompts: [hi]}}
""",
            sqlite_url,
            store_factory=store_factory,
            on_start=stop_after_recovery,
        )
    rows = stored(sqlite_url)["telemetry"]
    flaky_target = f"openai:m@{flaky.base_url('flaky500')}"
    down = probe_rows(rows, "probe.up", target=flaky_target)
    values = [r["value"] for r in sorted(down, key=lambda r: r["ts"])]
    assert values[:4] == [0.0] * 4 and values[-1] == 1.0, values
    assert {r["labels"]["error_class"] for r in down if r["value"] == 0} == {"http_500"}
    # Backoff: rests of 0.2, 0.4, 0.4... s after failures skip most of the dead target's 0.1 s fires.
    gone = probe_rows(rows, "probe.up", probe="gone")
    assert gone and {r["value"] for r in gone} == {0.0}
    assert {r["labels"]["error_class"] for r in gone} == {"unreachable"}
    elapsed = timing["elapsed"]
    assert len(gone) <= elapsed / 0.4 + 4, (len(gone), elapsed)
    assert summary.probes_skipped >= 20
    assert summary.status == "completed"
    # The alert hook: the flaky target fired and resolved, the dead one still fires at the end.
    states = [(t["alert_id"], t["state"]) for t in summary.alert_transitions]
    assert (flaky_target, "firing") in states and (flaky_target, "resolved") in states
    assert summary.alerts_firing == 1 and evaluator.calls >= 5


def test_database_outage_buffers_drops_oldest_and_recovers(server: FaultServer, sqlite_url: str) -> None:
    port = free_port()
    holder: dict[str, OutageStore] = {}
    seen: dict[str, Any] = {}

    def store_factory(config: dict[str, Any], targets: list[TargetInfo]) -> Store:
        inner = SqlStore.open(
            get_engine(sqlite_url), host="test-host", config=config, targets=targets, label=None, alerts=False
        )
        holder["store"] = OutageStore(inner)
        return holder["store"]

    def outage(monitor: Monitor) -> None:
        def script() -> None:
            store = holder["store"]
            wait_for(lambda: monitor.summary.probes_ok >= 1, 10, "a first probe")
            store.down.set()
            ok_before = monitor.summary.probes_ok
            wait_for(lambda: monitor.buffer.dropped > 0, 10, "the buffer to overflow")
            seen["probes_during_outage"] = monitor.summary.probes_ok - ok_before
            seen["metrics"] = scrape(f"http://127.0.0.1:{port}/metrics")
            store.down.clear()

        threading.Thread(target=script, daemon=True).start()

    summary = run(
        f"""
metrics_port: {port}
telemetry: {{every: 0.05s}}
buffer: {{max_rows: 40, flush_every: 0.2s}}
probes:
  - {{name: p, target: "openai:m@{server.base_url("ok")}", schedule: {{every: 0.1s}}, prompts: [hi]}}
""",
        sqlite_url,
        duration=3.0,
        store_factory=store_factory,
        on_start=outage,
    )
    assert seen["probes_during_outage"] >= 1  # the outage never blocked the probes
    metrics = seen["metrics"]
    assert total(metrics, "gemmawatch_monitor_rows_dropped_total") > 0
    assert total(metrics, "gemmawatch_monitor_write_errors_total") >= 1
    assert 0 < total(metrics, "gemmawatch_monitor_buffer_rows") <= 40
    assert holder["store"].failed_writes >= 1
    assert summary.status == "completed" and summary.rows_dropped > 0 and summary.rows_unwritten == 0
    data = stored(sqlite_url)
    assert data["runs"][0]["status"] == "completed"
    assert len(data["telemetry"]) == summary.rows_written - len(data["samples"])


def test_rejected_rows_are_dropped_not_retried_forever(server: FaultServer, sqlite_url: str) -> None:
    class Rejecting(OutageStore):
        def write(self, telemetry: list[dict[str, Any]], samples: list[dict[str, Any]]) -> None:
            self.failed_writes += 1
            raise ValueError("telemetry row 0: unknown field(s) ['oops']")

    def store_factory(config: dict[str, Any], targets: list[TargetInfo]) -> Store:
        return Rejecting(
            SqlStore.open(get_engine(sqlite_url), host="h", config=config, targets=targets, label=None, alerts=False)
        )

    summary = run(
        f"""
metrics_port: 0
probes: [{{name: p, target: "openai:m@{server.base_url("ok")}", schedule: {{every: 0.2s}}, prompts: [hi]}}]
""",
        sqlite_url,
        duration=1.0,
        store_factory=store_factory,
    )
    assert summary.status == "completed" and summary.rows_unwritten == 0 and summary.rows_dropped > 0


@pytest.mark.postgres
def test_postgres_outage_mid_run(server: FaultServer, postgres_database_factory: Any) -> None:
    """The real thing: the monitor's PostgreSQL database refuses connections for a while."""
    url = postgres_database_factory()
    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT")
    seen: dict[str, Any] = {}

    def outage(monitor: Monitor) -> None:
        def script() -> None:
            wait_for(lambda: monitor.flusher.written > 0, 15, "a first write")
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": name}
                )
            ok_before = monitor.summary.probes_ok
            wait_for(lambda: monitor.buffer.dropped > 0 and monitor.flusher.errors > 0, 15, "drops")
            seen["probes_during_outage"] = monitor.summary.probes_ok - ok_before
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

        threading.Thread(target=script, daemon=True).start()

    try:
        summary = run(
            f"""
metrics_port: 0
telemetry: {{every: 0.05s}}
buffer: {{max_rows: 60, flush_every: 0.2s}}
probes: [{{name: p, target: "openai:m@{server.base_url("ok")}", schedule: {{every: 0.1s}}, prompts: [hi]}}]
""",
            url,
            duration=4.0,
            on_start=outage,
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert seen["probes_during_outage"] >= 1
    assert summary.status == "completed" and summary.rows_dropped > 0 and summary.write_errors >= 1
    data = stored(url)
    assert data["runs"][0]["status"] == "completed"
    assert len(probe_rows(data["telemetry"], "probe.up")) >= 1


def test_once_runs_every_job_once(server: FaultServer, sqlite_url: str) -> None:
    summary = run(
        f"""
metrics_port: 0
probes:
  - {{name: a, target: "openai:m@{server.base_url("ok")}", schedule: {{cron: "0 3 * * *"}}, prompts: [hi]}}
  - {{name: b, target: "openai:m@{server.base_url("500")}", schedule: {{every: 1h}}, prompts: [hi]}}
""",
        sqlite_url,
        once=True,
    )
    assert (summary.probes_ok, summary.probes_failed, summary.status) == (1, 1, "completed")
    rows = stored(sqlite_url)["telemetry"]
    assert len(probe_rows(rows, "probe.up")) == 2 and any(r["source"] == "psutil" for r in rows)


def test_stop_from_another_thread(server: FaultServer, sqlite_url: str) -> None:
    def stop_soon(monitor: Monitor) -> None:
        threading.Timer(0.8, monitor.stop).start()

    start = time.monotonic()
    summary = run(
        f'probes: [{{name: a, target: "openai:m@{server.base_url("ok")}", schedule: {{every: 0.2s}}, prompts: [hi]}}]'
        "\nmetrics_port: 0",
        sqlite_url,
        on_start=stop_soon,
    )
    assert time.monotonic() - start < 5 and summary.status == "completed" and summary.probes_ok >= 2


@pytest.mark.parametrize(
    ("cfg", "error", "fragments"),
    [
        ("probes: [{name: a, target: nosuch, prompts: [hi]}]", ConfigError, ["probes.0.target", "nosuch"]),
        ("probes: [{name: a, target: 'zzz:m', prompts: [hi]}]", ConfigError, ["probes.0.target", "zzz"]),
        ("targets: {t: 'zzz:m'}\nprobes: [{name: a, target: t, prompts: [hi]}]", ConfigError, ["targets.t"]),
        (
            "probes: [{name: a, target: 'openai:m@http://127.0.0.1:1/v1', prompts: [hi]}]\n"
            "rate_limits: {targets: {other: 1}}",
            ConfigError,
            ["rate_limits.targets.other", "Fix:"],
        ),
        (
            "probes: [{name: a, target: 'openai:m@http://127.0.0.1:1/v1', dataset: {path: missing.jsonl}}]",
            ConfigError,
            ["probes.0.dataset", "missing.jsonl"],
        ),
        ("scrapes: [{name: s, url: 'ftp://x/metrics'}]", ConfigError, ["scrapes.0", "Invalid metrics URL"]),
    ],
)
def test_build_errors_are_one_line(
    cfg: str, error: type[Exception], fragments: list[str], sqlite_url: str, tmp_path: Path
) -> None:
    parsed = parse_monitor_config(cfg + "\nmetrics_port: 0", str(tmp_path / "m.yaml"))
    with pytest.raises(error) as info:
        run_monitor(parsed, db_url=sqlite_url, once=True, store_factory=_never)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_dataset_prompts_relative_to_the_config(server: FaultServer, sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "canaries.jsonl").write_text('{"q": "from the file"}\n\n{"q": "second"}\n')
    cfg = parse_monitor_config(
        f'probes: [{{name: d, target: "openai:m@{server.base_url("ok")}", dataset: {{path: canaries.jsonl, '
        "field: q}}]\nmetrics_port: 0\ntelemetry: {enabled: false}",
        str(tmp_path / "m.yaml"),
    )
    run_monitor(cfg, db_url=sqlite_url, once=True)
    (sample,) = stored(sqlite_url)["samples"]
    assert sample["prompt"] == "from the file"


def test_metrics_port_in_use_is_a_config_error(sqlite_url: str) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        cfg = parse_monitor_config(f"metrics_port: {port}\ntelemetry: {{every: 1s}}")
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*Fix: choose another metrics_port"):
            run_monitor(cfg, db_url=sqlite_url, once=True, store_factory=_never)


def _never(config: dict[str, Any], targets: list[TargetInfo]) -> Store:
    raise AssertionError("the store must not be opened when the config is invalid")
