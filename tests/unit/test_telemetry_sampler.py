"""TelemetrySampler: scheduling, row shape, flushing, failure isolation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC
from typing import Any

import pytest

from gemmawatch.collectors.telemetry import (
    HostCollector,
    ListSink,
    ProcessCollector,
    Reading,
    TelemetrySampler,
)

ROW_KEYS = {"run_id", "host", "source", "metric", "unit", "value", "ts", "interval_s", "labels"}


class Counter:
    """A deterministic collector: one reading per call with an increasing value."""

    source = "test"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Iterable[Reading]:
        self.calls += 1
        return [Reading(self.source, "calls", float(self.calls), "count", {"k": "v"})]


class Exploding:
    source = "test"

    def collect(self) -> Iterable[Reading]:
        raise RuntimeError("collector broke")


def test_rows_have_the_storage_keys_and_interval() -> None:
    sink = ListSink()
    with TelemetrySampler(
        [HostCollector(), ProcessCollector(), Counter()], interval_s=0.05, sink=sink, run_id=7, host="h1"
    ) as sampler:
        time.sleep(0.5)
    stats = sampler.stats
    assert not sampler.running
    assert sink.rows, "no rows were flushed on stop"
    assert all(set(r) == ROW_KEYS for r in sink.rows)
    assert {r["run_id"] for r in sink.rows} == {7}
    assert {r["host"] for r in sink.rows} == {"h1"}
    # The sampler's interval, or 1 s for the host's slow figures (load average, per-core CPU, IO rates).
    assert {r["interval_s"] for r in sink.rows if r["metric"] in {"memory.used_mb", "calls"}} == {0.05}
    assert {r["interval_s"] for r in sink.rows} == {0.05, 1.0}
    assert all(r["ts"].tzinfo is not None and r["ts"].utcoffset() == UTC.utcoffset(None) for r in sink.rows)
    metrics = {r["metric"] for r in sink.rows}
    assert {"memory.used_mb", "process.rss_mb", "calls", "cpu.percent"} <= metrics
    # ~0.5 s at 0.05 s -> about 10 ticks; allow for a loaded 2-core machine.
    assert 5 <= stats.samples <= 13
    calls = sorted(r["value"] for r in sink.rows if r["metric"] == "calls")
    assert calls == [float(i) for i in range(1, stats.samples + 1)]
    assert stats.rows_emitted == len(sink.rows) and stats.errors == 0


def test_ticks_follow_the_schedule_without_drift() -> None:
    class Slow(Counter):
        def collect(self) -> Iterable[Reading]:
            time.sleep(0.02)  # 40 % of the interval: a naive sleep(interval) loop would drift by 40 %
            return super().collect()

    sink = ListSink()
    with TelemetrySampler([Slow()], interval_s=0.05, sink=sink) as sampler:
        time.sleep(1.0)
    ts = sorted({r["ts"] for r in sink.rows})
    gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:], strict=False)]
    mean_gap = sum(gaps) / len(gaps)
    assert mean_gap == pytest.approx(0.05, rel=0.25)
    assert sampler.stats.samples >= 12


def test_flushes_in_batches_while_running() -> None:
    sink = ListSink()
    with TelemetrySampler([Counter()], interval_s=0.02, sink=sink, flush_every_s=0.1):
        time.sleep(0.45)
        seen_while_running = sink.batches
    assert seen_while_running >= 2
    assert sink.batches >= seen_while_running  # the final flush on stop may add one


def test_failing_sink_is_counted_and_the_thread_survives() -> None:
    calls: list[int] = []

    def sink(rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) % 2 == 1:
            raise OSError("database is locked")

    with TelemetrySampler([Counter()], interval_s=0.02, sink=sink, flush_every_s=0.05) as sampler:
        time.sleep(0.4)
        assert sampler.running
    stats = sampler.stats
    assert stats.sink_errors >= 2 and stats.rows_dropped > 0 and stats.rows_emitted > 0
    assert stats.rows_dropped + stats.rows_emitted == sum(calls) == stats.samples


def test_failing_collector_does_not_stop_the_others() -> None:
    sink = ListSink()
    with TelemetrySampler([Exploding(), Counter()], interval_s=0.03, sink=sink) as sampler:
        time.sleep(0.2)
    stats = sampler.stats
    assert stats.collector_errors == stats.samples >= 3
    assert len(sink.rows) == stats.samples and {r["metric"] for r in sink.rows} == {"calls"}


def test_stop_is_prompt_and_idempotent_and_start_only_once() -> None:
    sampler = TelemetrySampler([Counter()], interval_s=5.0, sink=ListSink())
    assert sampler.stop().samples == 0  # stop before start is harmless
    sampler = TelemetrySampler([Counter()], interval_s=5.0, sink=ListSink()).start()
    t0 = time.monotonic()
    stats = sampler.stop()
    assert time.monotonic() - t0 < 1.0  # Event.wait is interrupted, not a 5 s sleep
    assert stats.samples == 1 and stats.rows_emitted == 1
    assert sampler.stop() == stats
    with pytest.raises(RuntimeError):
        sampler.start()
    assert not any(t.name == "gemmawatch-telemetry" and t.is_alive() for t in threading.enumerate())


def test_invalid_interval_is_rejected() -> None:
    with pytest.raises(ValueError):
        TelemetrySampler([], interval_s=0, sink=ListSink())


def test_a_reading_refreshed_less_often_keeps_its_own_interval() -> None:
    class Slow:
        source = "test"

        def collect(self) -> Iterable[Reading]:
            return [Reading("test", "slow", 1.0, "count", {}, 1.0), Reading("test", "fast", 1.0, "count", {}, 0.001)]

    rows = TelemetrySampler([Slow()], interval_s=0.1, sink=ListSink()).sample_once()
    assert {r["metric"]: r["interval_s"] for r in rows} == {"slow": 1.0, "fast": 0.1}  # never below the sampler's


def test_the_default_interval_is_10_hz() -> None:
    assert TelemetrySampler([], sink=ListSink()).interval_s == 0.1


def test_in_run_sampling_defaults_to_10_hz_everywhere() -> None:
    import inspect

    from gemmawatch.cli.commands_bench import load
    from gemmawatch.cli.commands_eval import eval_command
    from gemmawatch.cli.commands_parity import parity
    from gemmawatch.load_pipeline import LoadTestRequest
    from gemmawatch.parity_pipeline import ParityRequest
    from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, EvalRequest

    assert DEFAULT_TELEMETRY_INTERVAL_S == 0.1
    for command in (eval_command, parity, load):
        option = inspect.signature(command).parameters["telemetry_interval"].default
        assert option.default == DEFAULT_TELEMETRY_INTERVAL_S, command.__name__
    for request in (EvalRequest, ParityRequest, LoadTestRequest):
        assert inspect.signature(request).parameters["telemetry_interval_s"].default == 0.1, request.__name__
