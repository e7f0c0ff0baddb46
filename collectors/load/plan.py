"""Run a whole load test: one step, or a sweep whose later steps depend on the first two.

A sweep (see :mod:`~gemmawatch.collectors.load.profiles`) runs synchronous,
then max throughput, measures both, and only then knows the constant rates of
the remaining steps; ``throughput_of`` supplies that measurement (the same
summary the results report, so the rates follow the reported figures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gemmawatch.collectors.load.driver import Clock, Driver
from gemmawatch.collectors.load.profiles import Profile, rate_step, sweep_head
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.collectors.load.runner import Budget, Recorder, StepRecord, run_step

#: ``throughput_of(step)`` -> measured requests/s of a finished step (0 if nothing completed).
ThroughputOf = Callable[[int], float]
Progress = Callable[[str], None]


async def run_plan(
    driver: Driver,
    pool: Sequence[LoadPrompt],
    profile: Profile,
    budget: Budget,
    *,
    clock: Clock,
    recorder: Recorder,
    seed: int,
    throughput_of: ThroughputOf,
    rates_between: Callable[[float, float, int], list[float]],
    progress: Progress = lambda _msg: None,
) -> list[StepRecord]:
    """Run ``profile`` (every step of a sweep) and return the step records."""
    if profile.kind != "sweep":
        progress(f"Load test: {profile.describe()}...")
        return [await run_step(driver, pool, profile, budget, step=0, clock=clock, recorder=recorder, seed=seed)]
    total = int(profile.steps or 2)
    records = []
    for step, head in enumerate(sweep_head(profile)):
        progress(f"Sweep step {step + 1}/{total}: {head.describe()}...")
        records.append(await run_step(driver, pool, head, budget, step=step, clock=clock, recorder=recorder, seed=seed))
    low, high = throughput_of(0), throughput_of(1)
    for step, rate in enumerate(rates_between(low, high, total), start=2):
        step_profile = rate_step(profile, rate)
        progress(f"Sweep step {step + 1}/{total}: {step_profile.describe()}...")
        records.append(
            await run_step(driver, pool, step_profile, budget, step=step, clock=clock, recorder=recorder, seed=seed)
        )
    return records
