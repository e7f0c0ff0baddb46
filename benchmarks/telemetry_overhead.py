"""What does in-run telemetry cost? CPU time of the sampler thread per wall second.

The sampler runs exactly as in ``gemmawatch eval``: the default collectors
(psutil host + process, NVML) writing through ``storage_sink`` into a fresh
SQLite database, flushed every 2 s. For each rate it measures the CPU time of
the sampler's own thread (``CLOCK_THREAD_CPUTIME_ID`` of that thread, read from
outside it, so the measurement costs the sampler nothing) over ``--seconds`` of
wall time after a 1 s warm-up, and prints it as a percentage of one core and as
a ratio to the goal (README: in-run sampling at 10 Hz costs <= 1% of one core).

A second table splits one tick into its parts, measured in this thread: each
collector's ``collect()``, turning readings into rows (with the flat-line
tracker), and the SQLite insert per row.

``--fake-gpus N`` replaces NVML with an in-process stand-in for N GPUs (for
machines without one): it measures gemmawatch's own cost per GPU (rows, SQLite),
not the driver calls, which a real GPU adds.

    python benchmarks/telemetry_overhead.py [--seconds 10] [--rates 1,10,50] [--fake-gpus 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gemmawatch.collectors.telemetry import (
    Collector,
    HostCollector,
    NvmlCollector,
    ProcessCollector,
    TelemetrySampler,
    default_collectors,
    storage_sink,
)
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import runs as rq

GOAL_PERCENT = 1.0  #: of one core, at 10 Hz
THREAD_NAME = "gemmawatch-telemetry"


class FakeNvml:
    """The pynvml calls NvmlCollector makes, answered instantly for ``count`` identical GPUs."""

    class NVMLError(Exception):
        pass

    def __init__(self, count: int) -> None:
        self.count = count
        self.energy_mj = 0

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=70 * 2**30, total=141 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 612_345

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        self.energy_mj += 61_234
        return self.energy_mj

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 64

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return 1980

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return 0

    def nvmlDeviceGetTotalEccErrors(self, handle: int, error_type: int, counter_type: int) -> int:
        return 0


def make_collectors(fake_gpus: int) -> list[Collector]:
    """The default collectors, with NVML faked for ``fake_gpus`` GPUs when that is > 0."""
    if fake_gpus <= 0:
        return default_collectors()
    return [HostCollector(), ProcessCollector(), NvmlCollector(nvml=FakeNvml(fake_gpus))]


def _thread_cpu_clock(thread: threading.Thread) -> int:
    """The CPU-time clock id of ``thread`` (Linux/BSD: pthread_getcpuclockid)."""
    assert thread.ident is not None
    return time.pthread_getcpuclockid(thread.ident)


def _sampler_thread() -> threading.Thread:
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME:
            return thread
    raise RuntimeError("the sampler thread is not running")


def measure_rate(hz: float, seconds: float, folder: Path, fake_gpus: int = 0) -> dict[str, Any]:
    """Run a sampler at ``hz`` into a fresh SQLite database; CPU of its thread per wall second."""
    engine = get_engine(f"sqlite:///{folder / f'telemetry-{hz:g}hz-{fake_gpus}gpus.db'}")
    with session_scope(engine) as s:
        run_id = rq.create_run(s, kind="eval", target_id=None, config={}, host="bench", versions={})
    collectors = make_collectors(fake_gpus)
    sampler = TelemetrySampler(collectors, interval_s=1.0 / hz, sink=storage_sink(engine), run_id=run_id)
    with sampler:
        time.sleep(1.0)  # warm-up: first flush, SQLAlchemy statement cache, page cache
        clock = _thread_cpu_clock(_sampler_thread())
        before = sampler.stats
        cpu0, wall0 = time.clock_gettime(clock), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = time.clock_gettime(clock), time.monotonic()
        after = sampler.stats
    for collector in collectors:
        close = getattr(collector, "close", None)
        if close is not None:
            close()
    engine.dispose()
    wall = wall1 - wall0
    percent = 100.0 * (cpu1 - cpu0) / wall
    ticks = after.samples - before.samples
    rows = after.rows_emitted - before.rows_emitted
    return {
        "hz": hz,
        "wall_s": wall,
        "cpu_ms_per_s": 1000.0 * (cpu1 - cpu0) / wall,
        "percent": percent,
        "ticks_per_s": ticks / wall,
        "rows_per_s": rows / wall,
        "errors": after.errors,
    }


def _per_call_us(fn: Any, repeats: int = 40, spacing_s: float = 0.1) -> float:
    """Median CPU microseconds of ``fn()``, called every ``spacing_s`` like a 10 Hz tick.

    The spacing matters: between ticks the caches go cold, and on the reference
    machine a cold call costs 3-5x a call repeated in a tight loop.
    """
    times = []
    for _ in range(repeats):
        time.sleep(spacing_s)
        t0 = time.thread_time_ns()
        fn()
        times.append(time.thread_time_ns() - t0)
    return statistics.median(times) / 1000.0


def breakdown(folder: Path, fake_gpus: int = 0) -> list[tuple[str, float]]:
    """Median CPU microseconds of each part of one 10 Hz tick, measured in this thread."""
    collectors = make_collectors(fake_gpus)
    parts: list[tuple[str, float]] = []
    for collector in collectors:
        collect = collector.collect
        parts.append((f"{type(collector).__name__}.collect()", _per_call_us(lambda c=collect: list(c()))))
    sampler = TelemetrySampler(collectors, interval_s=0.1, sink=lambda rows: None, run_id=None, host="bench")
    parts.append(("one tick: collectors + rows + flat-line tracker", _per_call_us(sampler.sample_once)))
    ticks = []
    for _ in range(10):  # one second of ticks: per-tick and once-a-second readings
        time.sleep(0.1)
        ticks.append(sampler.sample_once())
    rows = [row for tick in ticks for row in tick]
    engine = get_engine(f"sqlite:///{folder / f'breakdown-{fake_gpus}gpus.db'}")
    with session_scope(engine) as s:
        run_id = rq.create_run(s, kind="eval", target_id=None, config={}, host="bench", versions={})
    for row in rows:
        row["run_id"] = run_id
    sink = storage_sink(engine)
    batch = rows * 2  # one 2 s flush at 10 Hz
    insert = _per_call_us(lambda: sink(batch), repeats=20, spacing_s=0.5)
    parts.append((f"SQLite insert per row (one 2 s flush = {len(batch)} rows)", insert / len(batch)))
    parts.append(("rows per second at 10 Hz", float(len(rows))))
    for collector in collectors:
        close = getattr(collector, "close", None)
        if close is not None:
            close()
    engine.dispose()
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured wall seconds per rate")
    parser.add_argument("--rates", default="1,10,50", help="sampling rates in Hz, comma-separated")
    parser.add_argument("--fake-gpus", type=int, default=0, help="stand in for N GPUs instead of NVML")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    with tempfile.TemporaryDirectory(prefix="gemmawatch-telemetry-bench-") as tmp:
        folder = Path(tmp)
        gpus = f"NVML faked for {args.fake_gpus} GPUs" if args.fake_gpus else "real NVML"
        print(f"Sampler thread CPU per wall second, default collectors ({gpus}) -> SQLite, {args.seconds:g} s per rate")
        print(f"{'rate':>6} {'ticks/s':>8} {'rows/s':>8} {'CPU ms/s':>9} {'% of a core':>12} {'ratio to 1%':>12}")
        for hz in rates:
            r = measure_rate(hz, args.seconds, folder, args.fake_gpus)
            print(
                f"{r['hz']:>4g}Hz {r['ticks_per_s']:>8.1f} {r['rows_per_s']:>8.1f} {r['cpu_ms_per_s']:>9.2f} "
                f"{r['percent']:>11.2f}% {r['percent'] / GOAL_PERCENT:>12.2f}"
                + (f"   ({r['errors']} errors)" if r["errors"] else "")
            )
        print("\nOne 10 Hz tick, part by part (median CPU microseconds, calls 0.1 s apart):")
        for name, value in breakdown(folder, args.fake_gpus):
            print(f"  {name:<58} {value:>8.1f}")


if __name__ == "__main__":
    main()
