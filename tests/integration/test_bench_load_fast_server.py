"""`bench load` against a trivial OpenAI-compatible server: high rates, engine metrics, HTTP errors.

The server (benchmarks/trivial_openai_server.py) answers instantly or after a fixed
delay, so the generator's own behaviour is what these tests see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import gw
from load_fixtures import trivial_server


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """Answers each request after 0.2 s, so requests stay in flight; yields the URL without ``/v1``."""
    with trivial_server(delay_s=0.2) as base:
        yield base.removesuffix("/v1")


def bench(*args: str, db: str) -> dict:
    proc = gw("bench", "load", *args, "--db", db, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_engine_metrics_are_scraped_into_the_step_telemetry(slow_server: str, sqlite_url: str) -> None:
    out = bench(
        "--target", f"openai:trivial@{slow_server}/v1", "--profile", "concurrent", "--concurrency", "6",
        "--duration", "2", "--metrics-url", f"{slow_server}/metrics", "--telemetry-interval", "0.1", db=sqlite_url,
    )  # fmt: skip
    # Six requests always in flight on the server: its own gauge says so, averaged over the window.
    assert out["telemetry"]["requests_running"] == pytest.approx(6.0, abs=1.0)
    assert out["failed"] == 0 and out["completed"] >= 30
    # The E2E of a 0.2 s answer: the generator adds little.
    assert 0.2 <= out["e2e_p50_s"] < 0.3


def test_poisson_at_a_high_rate_keeps_its_schedule(slow_server: str, sqlite_url: str) -> None:
    out = bench(
        "--target", f"openai:trivial@{slow_server}/v1", "--profile", "poisson", "--rate", "200", "--duration", "2",
        "--seed", "3", db=sqlite_url,
    )  # fmt: skip
    # Open loop: ~40 requests in flight at 200/s x 0.2 s, none waiting for another.
    assert out["completed"] == pytest.approx(400, rel=0.25) and out["failed"] == 0
    assert out["lag_p99_s"] < 0.05
    assert out["request_throughput"] == pytest.approx(200, rel=0.25)


def test_http_errors_are_counted_not_retried(tmp_path: Path) -> None:
    from http_servers import FaultServer

    with FaultServer() as server:
        db = f"sqlite:///{tmp_path / 'gw.db'}"
        out = bench("--target", f"openai:m@{server.base_url('500')}", "--max-requests", "5", db=db)
        assert out["completed"] == 0 and out["failed"] == 5 and out["error_rate"] == 1.0
        assert len(server.posts("500")) == 5  # one attempt per request
        assert out["ttft_p50_s"] is None
