"""`gemmawatch monitor` as users run it: --once for cron, SIGTERM for systemd, one-line config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import OFFLINE, assert_user_error, gw, runs_json
from http_servers import FaultServer, free_port
from monitor_support import probe_rows, scrape, stored, total, wait_for, write_config


@pytest.fixture(scope="module")
def server() -> Any:
    with FaultServer(token_delay_s=0.002) as srv:
        yield srv


def test_once_runs_each_job_and_exits_zero(server: FaultServer, tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(
        tmp_path,
        f"""
host: cron-host
metrics_port: 0
targets:
  prod: "openai:fake-gemma@{server.base_url("ok")}"
probes:
  - {{name: hello, target: prod, schedule: {{every: 5m}}, prompts: [hi], checks: [pii, refusal]}}
""",
    )
    proc = gw("monitor", "--config", str(config), "--once", "--json", "--db", sqlite_url)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "completed" and summary["probes_ok"] == 1 and summary["rows_unwritten"] == 0
    assert "Monitor run 1 completed" in proc.stderr
    (run,) = [r for r in runs_json(sqlite_url) if r["kind"] == "monitor"]
    assert run["status"] == "completed"
    data = stored(sqlite_url)
    assert len(probe_rows(data["telemetry"], "probe.up", target="prod", probe="hello")) == 1
    unsafe = probe_rows(data["telemetry"], "probe.unsafe", target="prod")
    assert {r["labels"]["check"]: r["value"] for r in unsafe} == {"pii": 0.0, "refusal": 0.0}
    (sample,) = data["samples"]
    assert sample["task"] == "probe/hello" and set(sample["scores"]["checks"]) == {"pii", "refusal"}
    assert {r["host"] for r in data["telemetry"]} == {"cron-host"}


def test_sigterm_flushes_and_completes_the_run(server: FaultServer, tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        f"""
metrics_port: {port}
probes:
  - {{name: p, target: "openai:fake-gemma@{server.base_url("ok")}", schedule: {{every: 0.3s}}, prompts: [hi]}}
telemetry: {{every: 0.5s}}
buffer: {{flush_every: 30s}}
""",
    )
    env = {**os.environ, **OFFLINE}
    env.pop("GEMMAWATCH_CONFIG", None)
    cmd = [sys.executable, "-m", "gemmawatch.cli.main", "monitor", "--config", str(config), "--db", sqlite_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def probed() -> bool:
            try:
                return total(scrape(url, timeout=1), "gemmawatch_monitor_probes_total", status="ok") >= 2
            except OSError:
                return proc.poll() is not None  # died: fall through to the assertions below

        wait_for(probed, 60, "the monitor to probe twice", every=0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    (run,) = runs_json(sqlite_url)
    assert run["kind"] == "monitor" and run["status"] == "completed"
    # flush_every is 30 s: every row stored here was written by the flush on SIGTERM.
    assert len(probe_rows(stored(sqlite_url)["telemetry"], "probe.up")) >= 2


def test_config_errors_are_one_line(tmp_path: Path, sqlite_url: str) -> None:
    bad = write_config(tmp_path, "probes: [{name: a, target: t, prompts: [hi], schedule: {every: soon}}]\n")
    assert_user_error(gw("monitor", "--config", str(bad), "--once"), "probes.0.schedule.every", "Fix:")
    unknown = write_config(tmp_path, "probes: [{name: a, target: nosuch, prompts: [hi]}]\n", name="u.yaml")
    assert_user_error(gw("monitor", "--config", str(unknown), "--once", "--db", sqlite_url), "probes.0.target")
    checks = write_config(
        tmp_path, "probes: [{name: a, target: 'openai:m@http://127.0.0.1:1/v1', prompts: [hi], checks: [nope]}]\n",
        name="c.yaml",
    )  # fmt: skip
    assert_user_error(gw("monitor", "--config", str(checks), "--once", "--db", sqlite_url), "probes.0.checks.0")
    assert_user_error(gw("monitor", "--config", str(tmp_path / "missing.yaml")), "does not exist")
    assert_user_error(gw("monitor", "--config", str(bad), "--once", "--duration", "5"), "--once and --duration")
    assert not [r for r in runs_json(sqlite_url) if r["kind"] == "monitor"]  # nothing started
