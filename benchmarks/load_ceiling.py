"""How fast can the load generator itself go? gemmawatch vs a bare aiohttp loop, same endpoint.

The endpoint is ``trivial_openai_server.py`` (answers instantly), pinned to one
core while this process takes the other, so the request rate measures the
client. Three figures:

* bare aiohttp: N workers POST and read each stream to the end, nothing recorded;
* gemmawatch concurrent N: the real driver and scheduler, every chunk time recorded;
* gemmawatch constant R/s through the whole CLI (``bench load --json``, database included):
  the achieved rate and the p99 send lag tell whether it keeps an open-loop schedule.

Goal (README): the generator sustains >= 500 requests/s on a 2-core machine.

    python benchmarks/load_ceiling.py [--seconds 5] [--concurrency 32] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

from gemmawatch.collectors.backends.base import TargetInfo
from gemmawatch.collectors.load.driver import start_clock
from gemmawatch.collectors.load.http_driver import HttpDriver
from gemmawatch.collectors.load.metrics import assign_phases, summarize
from gemmawatch.collectors.load.profiles import make_profile
from gemmawatch.collectors.load.prompts import builtin_prompts
from gemmawatch.collectors.load.runner import Budget, Recorder, run_step

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(HERE / "trivial_openai_server.py"), "--port", str(port)])
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(proc.pid, {1})
        os.sched_setaffinity(0, {0})
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the trivial server did not start")


async def bare(url: str, seconds: float, concurrency: int) -> float:
    body = json.dumps({"model": "trivial", "prompt": "hello", "max_tokens": 4, "stream": True}).encode()
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    async for _ in resp.content:
                        pass
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def gemmawatch_concurrent(base_url: str, seconds: float, concurrency: int) -> tuple[float, int]:
    info = TargetInfo(name="trivial", backend="openai", model_id="trivial", options={"base_url": base_url})
    driver = HttpDriver(info, max_inflight=concurrency)
    recorder = Recorder()
    profile = make_profile("concurrent", concurrency=concurrency)
    pool = builtin_prompts(256, input_tokens=8, output_tokens=4, seed=0)
    clock = start_clock()
    try:
        await run_step(
            driver, pool, profile, Budget(duration_s=seconds), step=0, clock=clock, recorder=recorder, seed=0
        )
    finally:
        await driver.aclose()
    window = assign_phases(recorder.events, warmup_s=0.0, cooldown_s=0.0)
    summary = summarize(recorder.events, window=window)
    return summary.request_throughput or 0.0, summary.failed


def cli_constant(base_url: str, seconds: float, rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/ceiling.db"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "gemmawatch.cli.main",
                "bench",
                "load",
                "--target",
                f"openai:trivial@{base_url}",
                "--profile",
                "constant",
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--output-tokens",
                "4",
                "--input-tokens",
                "8",
                "--db",
                db,
                "--json",
            ],  # fmt: skip
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise SystemExit(f"bench load failed ({out.returncode}): {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        raw = asyncio.run(bare(base_url + "/completions", args.seconds, args.concurrency))
        gw, failed = asyncio.run(gemmawatch_concurrent(base_url, args.seconds, args.concurrency))
        cli = cli_constant(base_url, args.seconds, args.rate)
    finally:
        server.terminate()
        server.wait(10)
    achieved = float(cli.get("request_throughput") or 0.0)
    lag = cli.get("lag_p99_s")
    lag_text = "-" if lag is None else f"{float(str(lag)) * 1000:.1f} ms"
    print(f"cpus: {os.cpu_count()}  seconds per figure: {args.seconds:g}  concurrency: {args.concurrency}")
    print(f"{'figure':<44}{'requests/s':>12}{'ratio':>8}")
    print(f"{'bare aiohttp loop (nothing recorded)':<44}{raw:>12.0f}{1.0:>8.2f}")
    print(f"{'gemmawatch driver, concurrent':<44}{gw:>12.0f}{gw / raw:>8.2f}   failed: {failed}")
    print(f"{f'gemmawatch CLI, constant {args.rate:g}/s':<44}{achieved:>12.0f}{achieved / raw:>8.2f}   "
          f"of target: {achieved / args.rate:.3f}  send lag p99: {lag_text}"
          f"  failed: {cli.get('failed')}")  # fmt: skip
    verdict = "PASS" if gw >= 500 and achieved >= 0.95 * min(args.rate, 500) else "FAIL"
    print(f"goal >= 500 requests/s sustained: {verdict}")


if __name__ == "__main__":
    main()
