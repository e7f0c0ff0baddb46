"""`gemmawatch bench load` against a real llama.cpp server on the bundled Gemma.

Each profile runs for a few seconds with short outputs; the figures are checked
for internal consistency (they come from the stored raw events), not for speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import OFFLINE, assert_user_error, gw
from http_servers import LLAMA_ALIAS, llama_server  # noqa: F401 - llama_server is a fixture

from gemmawatch.collectors.load.profiles import make_profile
from gemmawatch.collectors.load.runner import Budget
from gemmawatch.collectors.load.saturation import sweep_rates
from gemmawatch.config import GemmawatchConfig
from gemmawatch.load_pipeline import LoadTestRequest, run_load_test
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import load as lq
from gemmawatch.storage.queries import runs as rq

pytestmark = pytest.mark.model

CONTRACT = ["run_id", "completed", "failed", "request_throughput", "output_throughput",
            "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "e2e_p50_s"]  # fmt: skip


def target(url: str) -> str:
    return f"openai:{LLAMA_ALIAS}@{url}"


def run(url: str, db: str, profile, budget: Budget, **kw):
    request = LoadTestRequest(
        target=target(url), profile=profile, budget=budget, input_tokens=16, output_tokens=6,
        telemetry_interval_s=0.2, **kw,
    )  # fmt: skip
    return run_load_test(request, db_url=db, config=GemmawatchConfig())


def stored(db: str, run_id: int):
    engine = get_engine(db)
    with session_scope(engine) as s:
        return rq.run_summary(s, run_id), lq.load_requests(s, run_id)


def test_concurrent_json_contract_and_stored_events(llama_server: str, sqlite_url: str) -> None:  # noqa: F811
    proc = gw(
        "bench", "load", "--target", target(llama_server), "--profile", "concurrent", "--concurrency", "2",
        "--max-requests", "6", "--input-tokens", "16", "--output-tokens", "6", "--db", sqlite_url, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(CONTRACT) <= set(out)
    assert out["completed"] == 6 and out["failed"] == 0 and out["status"] == "completed"
    assert 0 < out["ttft_p50_s"] <= out["ttft_p99_s"] and out["ttft_p50_s"] < out["e2e_p50_s"]
    assert out["tpot_p50_s"] > 0 and out["request_throughput"] > 0
    assert out["output_throughput"] == pytest.approx(out["output_tokens"] / out["duration_s"])
    summary, events = stored(sqlite_url, out["run_id"])
    assert summary["kind"] == "load" and summary["status"] == "completed"
    assert len(events) == 6 and all(e.ok for e in events)
    # llama-cpp-python's server sends no usage in streams: output is counted in text chunks (one token each).
    assert all(e.token_source in ("server", "chunks") and e.output_tokens == e.n_chunks for e in events)
    # Raw events, never only averages: every chunk time is kept and TTFT is the first one.
    assert all(e.n_chunks == len(e.chunk_s) >= 1 and e.first_chunk_s == e.chunk_s[0] for e in events)
    load_metrics = {m["metric"]: m for m in summary["metrics"] if m["task"] == "load"}
    assert load_metrics["ttft_p50_s"]["n"] == 6
    lo, hi = load_metrics["ttft_p50_s"]["ci_low"], load_metrics["ttft_p50_s"]["ci_high"]
    assert lo <= load_metrics["ttft_p50_s"]["value"] <= hi
    assert summary["telemetry_count"] > 0 and summary["load_requests_count"] == 6
    # The same run through `runs show --json`: the figures users' scripts read.
    shown = json.loads(gw("runs", "show", str(out["run_id"]), "--json", "--db", sqlite_url).stdout)
    row = next(m for m in shown["metrics"] if m["metric"] == "request_throughput")
    assert {"n", "ci_low", "ci_high"} <= set(row)


def test_synchronous_for_a_few_seconds(llama_server: str, sqlite_url: str) -> None:  # noqa: F811
    out = run(llama_server, sqlite_url, make_profile("synchronous"), Budget(duration_s=2.0))
    _, events = stored(sqlite_url, out.run_id)
    assert events and all(e.sent_s < events[0].sent_s + 2.0 for e in events)
    # The time budget was used: the last request ended after the deadline, else another would have gone out.
    assert events[-1].end_s >= events[0].sent_s + 2.0 - 0.05
    for a, b in zip(events, events[1:], strict=False):
        assert b.sent_s >= a.end_s  # one at a time
    assert all(e.scheduled_s is None for e in events)


def test_constant_and_poisson_follow_their_schedules(llama_server: str, sqlite_url: str) -> None:  # noqa: F811
    const = run(llama_server, sqlite_url, make_profile("constant", rate=2.0), Budget(duration_s=2.5))
    _, events = stored(sqlite_url, const.run_id)
    start = events[0].scheduled_s
    assert [round(e.scheduled_s - start, 6) for e in events] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(e.lag_s < 0.1 for e in events)
    poisson = [run(llama_server, sqlite_url, make_profile("poisson", rate=3.0), Budget(max_requests=4), seed=11)
               for _ in range(2)]  # fmt: skip
    plans = []
    for out in poisson:
        _, ev = stored(sqlite_url, out.run_id)
        plans.append([round(e.scheduled_s - ev[0].scheduled_s, 9) for e in ev])
    assert plans[0] == plans[1] and len(plans[0]) == 4  # same seed, same arrivals


def test_sweep_steps_and_saturation_report(llama_server: str, sqlite_url: str) -> None:  # noqa: F811
    out = run(llama_server, sqlite_url, make_profile("sweep", steps=3, concurrency=3), Budget(max_requests=3))
    assert [s["profile"].split("@")[0] for s in out.steps] == ["synchronous", "concurrent", "constant"]
    sync, peak, rate = out.steps
    # The constant rate comes from the two measured steps, exactly as reported (GuideLLM's spacing; overload when
    # concurrency did not scale, as on this one-slot server).
    expected = sweep_rates(sync["request_throughput"], peak["request_throughput"], 3)
    assert rate["offered_rate"] == pytest.approx(expected[0])
    summary, events = stored(sqlite_url, out.run_id)
    assert sorted({e.step for e in events}) == [0, 1, 2]
    filters = {m["filter"] for m in summary["metrics"] if m["task"] == "load"}
    assert filters == {"step00", "step01", "step02"}
    assert summary["config"]["steps"][2]["offered_rate"] == rate["offered_rate"]


def test_goodput_against_slos(llama_server: str, sqlite_url: str) -> None:  # noqa: F811
    from gemmawatch.collectors.load.metrics import parse_slo

    loose = run(llama_server, sqlite_url, make_profile("synchronous"), Budget(max_requests=3), slo=parse_slo("e2e=60s"))
    tight = run(
        llama_server, sqlite_url, make_profile("synchronous"), Budget(max_requests=3), slo=parse_slo("ttft=1ms")
    )
    assert loose.headline["goodput_fraction"] == 1.0
    assert loose.headline["goodput"] == pytest.approx(loose.headline["request_throughput"])
    assert tight.headline["goodput_fraction"] == 0.0 and tight.headline["goodput"] == 0.0


def test_in_process_backend_through_the_worker_pool(sqlite_url: str) -> None:
    pytest.importorskip("llama_cpp")
    request = LoadTestRequest(
        target="llamacpp:bundled:gemma-3-270m",
        profile=make_profile("concurrent", concurrency=2),
        budget=Budget(max_requests=3),
        input_tokens=8, output_tokens=4,
    )  # fmt: skip
    out = run_load_test(request, db_url=sqlite_url, config=GemmawatchConfig())
    _, events = stored(sqlite_url, out.run_id)
    assert out.headline["completed"] == 3 and all(e.ok and e.n_chunks >= 1 for e in events)
    # One model, one request at a time: the second in flight waits, and that wait is in its TTFT.
    assert max(e.ttft_s for e in events) > min(e.e2e_s for e in events)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_a_consistent_partial_run(llama_server: str, tmp_path: Path, sig) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    env = {**os.environ, **OFFLINE}
    env.pop("GEMMAWATCH_CONFIG", None)
    err_path = tmp_path / "stderr.log"
    with err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gemmawatch.cli.main", "bench", "load", "--target", target(llama_server),
             "--profile", "concurrent", "--concurrency", "2", "--duration", "120", "--output-tokens", "8",
             "--input-tokens", "16", "--db", db, "--json"],
            stdout=subprocess.DEVNULL, stderr=err_file, text=True, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "Load test:" not in err_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(5.0)  # several requests done, two in flight
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = err_path.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stored as partial" in err
    engine = get_engine(db)
    with session_scope(engine) as s:
        (run_row,) = rq.list_runs(s)
        summary = rq.run_summary(s, run_row["id"])
        events = lq.load_requests(s, run_row["id"])
    assert summary["status"] == "partial" and "interrupted" in summary["error"]
    assert any(e.ok for e in events)
    cancelled = [e for e in events if e.error_class == "cancelled"]
    assert 1 <= len(cancelled) <= 2 and all(e.end_s is not None for e in cancelled)
    assert any(m["metric"] == "request_throughput" for m in summary["metrics"])


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--profile", "bursty"], ["Unknown profile 'bursty'"]),
        (["--profile", "constant"], ["needs --rate"]),
        (["--slo", "ttft=fast"], ["Invalid --slo"]),
        (["--dataset", "/nonexistent/prompts.jsonl"], ["does not exist"]),
        (["--metrics-url", "ftp://x/metrics"], ["metrics URL"]),
        (["--duration", "2", "--warmup", "2"], ["leave nothing"]),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    proc = gw("bench", "load", "--target", "openai:m@http://127.0.0.1:9/v1", *args, "--db", db)
    assert_user_error(proc, *fragments)
    assert not (tmp_path / "gw.db").exists() or json.loads(gw("runs", "list", "--json", "--db", db).stdout) == []


def test_unreachable_server_is_a_user_error_without_a_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    proc = gw("bench", "load", "--target", "openai:m@http://127.0.0.1:9/v1", "--max-requests", "2", "--db", db)
    assert_user_error(proc, "127.0.0.1:9")
    assert json.loads(gw("runs", "list", "--json", "--db", db).stdout) == []
