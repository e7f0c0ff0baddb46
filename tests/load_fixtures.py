"""Real load-test runs for dashboard tests: ``run_load_test`` against ``benchmarks/trivial_openai_server.py``.

Two "variants" of a served model are two trivial servers on free loopback ports
(4 and 8 output chunks per answer); :func:`populate_load` stores a sweep of the
first and a concurrent run of the second through the real pipeline, so the
Performance page reads exactly what ``gemmawatch bench load`` writes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from http_servers import free_port

from gemmawatch.collectors.load.profiles import make_profile
from gemmawatch.collectors.load.runner import Budget
from gemmawatch.config import GemmawatchConfig
from gemmawatch.load_pipeline import LoadTestRequest, run_load_test

SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "trivial_openai_server.py"
#: Steps of the stored sweep and requests per step (kept small: the whole fixture takes a few seconds).
SWEEP_STEPS = 3
MAX_REQUESTS = 40


@dataclass(frozen=True)
class LoadRuns:
    """Ids and targets of the runs :func:`populate_load` stored."""

    sweep: int
    concurrent: int
    sweep_target: str
    concurrent_target: str


@contextlib.contextmanager
def trivial_server(chunks: int = 4, *, delay_s: float = 0.0, timeout_s: float = 30.0) -> Iterator[str]:
    """A trivial OpenAI-compatible server on 127.0.0.1 (answers after ``delay_s``); yields ``.../v1`` and stops it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", str(port), "--chunks", str(chunks), "--delay", str(delay_s)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"trivial server on {base} did not start: {err}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def populate_load(url: str) -> LoadRuns:
    """Store a sweep (variant with 4-chunk answers) and a concurrent run (8-chunk answers) in ``url``."""
    with trivial_server(4) as base_a, trivial_server(8) as base_b:
        target_a, target_b = f"openai:trivial@{base_a}", f"openai:trivial@{base_b}"
        common = {"input_tokens": 16, "output_tokens": 8, "telemetry_interval_s": 0.2}
        sweep = run_load_test(
            LoadTestRequest(
                target=target_a,
                profile=make_profile("sweep", steps=SWEEP_STEPS, concurrency=4),
                budget=Budget(max_requests=MAX_REQUESTS),
                **common,  # type: ignore[arg-type]
            ),
            db_url=url,
            config=GemmawatchConfig(),
        )
        concurrent = run_load_test(
            LoadTestRequest(
                target=target_b,
                profile=make_profile("concurrent", concurrency=4),
                budget=Budget(max_requests=MAX_REQUESTS),
                label="variant-b",
                **common,  # type: ignore[arg-type]
            ),
            db_url=url,
            config=GemmawatchConfig(),
        )
    return LoadRuns(sweep=sweep.run_id, concurrent=concurrent.run_id, sweep_target=target_a, concurrent_target=target_b)
