"""Drive a load profile: schedule sends, enforce budgets, survive cancellation.

A step runs until its request budget (``max_requests`` sends) or its time
budget (no new send after ``duration_s``) is spent, whichever comes first; the
requests already in flight are then awaited (they still count, or fall in the
cool-down). Warm-up and cool-down are not decided here: events are recorded
raw, and the measurement window is applied afterwards (``metrics.assign_phases``).

Every sent request is appended to the :class:`Recorder` before it is sent, so a
cancelled test (Ctrl-C, SIGTERM) still holds every request it made: the ones in
flight are marked ``cancelled`` by their driver as the cancellation unwinds.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gemmawatch.collectors.load.driver import Clock, Driver
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.profiles import Profile, arrival_offsets
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.errors import ConfigError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Budget:
    """How much each step may send; at least one of the two limits is required."""

    max_requests: int | None = None
    duration_s: float | None = None
    warmup_s: float = 0.0
    cooldown_s: float = 0.0

    def __post_init__(self) -> None:
        if self.max_requests is None and self.duration_s is None:
            raise ConfigError("A load test needs a budget. Fix: pass --max-requests N and/or --duration SECONDS")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigError(f"--max-requests must be >= 1, got {self.max_requests}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"--duration must be > 0 seconds, got {self.duration_s}")
        if self.warmup_s < 0 or self.cooldown_s < 0:
            raise ConfigError("--warmup and --cooldown must be >= 0 seconds")
        if self.duration_s is not None and self.warmup_s + self.cooldown_s >= self.duration_s:
            raise ConfigError(
                f"--warmup {self.warmup_s:g} s + --cooldown {self.cooldown_s:g} s leave nothing of "
                f"--duration {self.duration_s:g} s. Fix: shorten them or lengthen the test"
            )

    def as_dict(self) -> dict[str, float | int | None]:
        """The budget as stored with the run."""
        return {
            "max_requests": self.max_requests,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "cooldown_s": self.cooldown_s,
        }


@dataclass
class StepRecord:
    """One executed step: its profile and when it started and ended on the test clock."""

    step: int
    profile: Profile
    started_s: float
    ended_s: float | None = None


@dataclass
class Recorder:
    """Every request sent so far, and the steps; owned by the caller so it survives a cancel."""

    events: list[RequestEvent] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)

    def new_event(self, step: int, seq: int, sent_s: float, scheduled_s: float | None) -> RequestEvent:
        """Record a request at the moment it is sent."""
        event = RequestEvent(seq=seq, step=step, sent_s=sent_s, scheduled_s=scheduled_s)
        self.events.append(event)
        return event

    def step_events(self, step: int) -> list[RequestEvent]:
        """The events of one step, in send order."""
        return [e for e in self.events if e.step == step]


async def run_step(
    driver: Driver,
    pool: Sequence[LoadPrompt],
    profile: Profile,
    budget: Budget,
    *,
    step: int,
    clock: Clock,
    recorder: Recorder,
    seed: int,
) -> StepRecord:
    """Run one non-sweep profile; request ``seq`` k carries ``pool[k % len(pool)]``."""
    if not pool:
        raise ConfigError("No prompts to send. Fix: check --dataset")
    record = StepRecord(step=step, profile=profile, started_s=clock())
    recorder.steps.append(record)
    stop_at = record.started_s + budget.duration_s if budget.duration_s is not None else math.inf
    if profile.open_loop:
        await _open_loop(driver, pool, profile, budget, record, clock, recorder, seed, stop_at)
    else:
        await _closed_loop(driver, pool, profile, budget, record, clock, recorder, stop_at)
    record.ended_s = clock()
    return record


async def _closed_loop(
    driver: Driver,
    pool: Sequence[LoadPrompt],
    profile: Profile,
    budget: Budget,
    record: StepRecord,
    clock: Clock,
    recorder: Recorder,
    stop_at: float,
) -> None:
    counter = itertools.count()
    limit = budget.max_requests

    async def worker() -> None:
        while True:
            seq = next(counter)
            now = clock()
            if (limit is not None and seq >= limit) or now >= stop_at:
                return
            event = recorder.new_event(record.step, seq, now, None)
            await driver.send(pool[seq % len(pool)], event, clock)

    await _gather_or_cancel([asyncio.create_task(worker()) for _ in range(profile.workers)])


async def _open_loop(
    driver: Driver,
    pool: Sequence[LoadPrompt],
    profile: Profile,
    budget: Budget,
    record: StepRecord,
    clock: Clock,
    recorder: Recorder,
    seed: int,
    stop_at: float,
) -> None:
    slots = asyncio.Semaphore(profile.max_inflight)
    inflight: set[asyncio.Task[None]] = set()

    async def send(prompt: LoadPrompt, event: RequestEvent) -> None:
        try:
            await driver.send(prompt, event, clock)
        finally:
            slots.release()

    try:
        for seq, offset in enumerate(arrival_offsets(profile, seed)):
            scheduled = record.started_s + offset
            if (budget.max_requests is not None and seq >= budget.max_requests) or scheduled >= stop_at:
                break
            delay = scheduled - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()  # the in-flight cap; waiting here shows up as send lag
            event = recorder.new_event(record.step, seq, clock(), scheduled)
            task = asyncio.create_task(send(pool[seq % len(pool)], event))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
    except asyncio.CancelledError:
        await _cancel_all(list(inflight))
        raise
    await _gather_or_cancel(list(inflight))


async def _gather_or_cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Await ``tasks``; on cancellation cancel them all and let their drivers mark the events."""
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        await _cancel_all(tasks)
        raise
    except BaseException:
        await _cancel_all(tasks)
        raise


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
