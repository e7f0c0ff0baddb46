"""Scheduling of load profiles: budgets, concurrency, open-loop timing, cancellation.

The driver here sleeps instead of calling a model, so the scheduling logic is
checked exactly; real servers are exercised in tests/integration/test_bench_load.py.
"""

from __future__ import annotations

import asyncio

import pytest

from gemmawatch.collectors.load.driver import start_clock
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.plan import run_plan
from gemmawatch.collectors.load.profiles import make_profile
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.collectors.load.runner import Budget, Recorder, run_step
from gemmawatch.errors import ConfigError

POOL = [LoadPrompt(f"prompt {i}", 4) for i in range(3)]


class SleepDriver:
    """Answers after ``latency_s`` with ``chunks`` evenly spaced chunks; tracks concurrency."""

    name = "sleep"
    capacity = None

    def __init__(self, latency_s: float = 0.02, chunks: int = 4) -> None:
        self.latency_s, self.chunks = latency_s, chunks
        self.inflight = self.peak = 0
        self.prompts: list[str] = []

    async def send(self, prompt: LoadPrompt, event: RequestEvent, clock) -> None:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        self.prompts.append(prompt.text)
        try:
            for _ in range(self.chunks):
                await asyncio.sleep(self.latency_s / self.chunks)
                now = clock()
                event.first_chunk_s = event.first_chunk_s or now
                event.chunk_s.append(now)
                event.n_chunks += 1
            event.end_s, event.output_tokens = clock(), self.chunks
        except asyncio.CancelledError:
            event.end_s, event.error, event.error_class = clock(), "cancelled", "cancelled"
            raise
        finally:
            self.inflight -= 1

    async def aclose(self) -> None:
        pass


def run(profile, budget, driver=None, seed=0):
    driver = driver or SleepDriver()
    recorder = Recorder()

    async def main():
        return await run_step(driver, POOL, profile, budget, step=0, clock=start_clock(), recorder=recorder, seed=seed)

    record = asyncio.run(main())
    return driver, recorder, record


def test_budget_needs_a_limit_and_a_measurable_window():
    with pytest.raises(ConfigError, match="needs a budget"):
        Budget()
    with pytest.raises(ConfigError, match="leave nothing of --duration 5 s"):
        Budget(duration_s=5, warmup_s=3, cooldown_s=2)
    with pytest.raises(ConfigError, match="--max-requests must be >= 1"):
        Budget(max_requests=0)


def test_synchronous_sends_one_at_a_time_in_schedule_order():
    driver, rec, record = run(make_profile("synchronous"), Budget(max_requests=7))
    assert driver.peak == 1
    assert [e.seq for e in rec.events] == list(range(7))
    assert driver.prompts == [POOL[i % 3].text for i in range(7)]
    for a, b in zip(rec.events, rec.events[1:], strict=False):
        assert b.sent_s >= a.end_s  # the next request waits for the previous answer
    assert record.ended_s >= rec.events[-1].end_s


def test_concurrent_keeps_exactly_n_in_flight():
    driver, rec, _ = run(make_profile("concurrent", concurrency=4), Budget(max_requests=20))
    assert driver.peak == 4
    assert sorted(e.seq for e in rec.events) == list(range(20))
    assert all(e.ok for e in rec.events)


def test_time_budget_stops_new_sends():
    driver, rec, record = run(make_profile("concurrent", concurrency=2), Budget(duration_s=0.3))
    assert rec.events and all(e.sent_s < record.started_s + 0.3 for e in rec.events)
    assert all(e.ok for e in rec.events)  # requests in flight at the deadline still finish


def test_constant_rate_sends_on_schedule_without_waiting_for_answers():
    # Each answer takes 0.2 s but requests go out every 0.02 s: an open loop never waits.
    driver, rec, _ = run(make_profile("constant", rate=50), Budget(max_requests=15), SleepDriver(latency_s=0.2))
    assert [e.scheduled_s for e in rec.events] == pytest.approx([k / 50 for k in range(15)], abs=1e-3)
    assert max(e.lag_s for e in rec.events) < 0.015
    assert driver.peak >= 8


def test_open_loop_in_flight_cap_shows_as_lag():
    profile = make_profile("constant", rate=100, max_inflight=2)
    driver, rec, _ = run(profile, Budget(max_requests=8), SleepDriver(latency_s=0.1))
    assert driver.peak == 2
    assert max(e.lag_s for e in rec.events) > 0.1  # held back by the cap, and the lag says so


def test_poisson_schedule_is_reproducible():
    profile = make_profile("poisson", rate=200)
    _, a, ra = run(profile, Budget(max_requests=10), SleepDriver(latency_s=0.001), seed=5)
    _, b, rb = run(profile, Budget(max_requests=10), SleepDriver(latency_s=0.001), seed=5)
    _, c, rc = run(profile, Budget(max_requests=10), SleepDriver(latency_s=0.001), seed=6)

    def plan(rec, record):
        return [e.scheduled_s - record.started_s for e in rec.events]

    assert plan(a, ra) == pytest.approx(plan(b, rb), abs=1e-9)
    assert plan(a, ra) != pytest.approx(plan(c, rc), abs=1e-9)


def test_cancellation_keeps_every_sent_request_and_marks_the_unfinished():
    recorder = Recorder()
    driver = SleepDriver(latency_s=10.0)

    async def main():
        task = asyncio.create_task(
            run_step(driver, POOL, make_profile("concurrent", concurrency=3), Budget(max_requests=50),
                     step=0, clock=start_clock(), recorder=recorder, seed=0)
        )  # fmt: skip
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(recorder.events) == 3
    assert all(e.error_class == "cancelled" and e.end_s is not None for e in recorder.events)
    assert driver.inflight == 0


def test_cancelling_an_open_loop_cancels_its_in_flight_requests():
    recorder = Recorder()

    async def main():
        task = asyncio.create_task(
            run_step(SleepDriver(latency_s=10.0), POOL, make_profile("constant", rate=100), Budget(max_requests=1000),
                     step=0, clock=start_clock(), recorder=recorder, seed=0)
        )  # fmt: skip
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert 5 <= len(recorder.events) <= 15
    assert all(e.error_class == "cancelled" for e in recorder.events)


def test_sweep_runs_sync_then_max_then_rates_between():
    recorder = Recorder()
    seen: list[tuple[float, float, int]] = []

    def rates_between(low: float, high: float, steps: int) -> list[float]:
        seen.append((low, high, steps))
        return [low + (high - low) * k / (steps - 1) for k in range(1, steps - 1)]

    async def main():
        return await run_plan(
            SleepDriver(latency_s=0.01), POOL, make_profile("sweep", steps=4, concurrency=4), Budget(max_requests=6),
            clock=start_clock(), recorder=recorder, seed=0,
            throughput_of=lambda step: [10.0, 40.0][step], rates_between=rates_between,
        )  # fmt: skip

    records = asyncio.run(main())
    assert [r.profile.describe() for r in records] == ["synchronous", "concurrent@4", "constant@20/s", "constant@30/s"]
    assert seen == [(10.0, 40.0, 4)]
    assert [len(recorder.step_events(k)) for k in range(4)] == [6, 6, 6, 6]
