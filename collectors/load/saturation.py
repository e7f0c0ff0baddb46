"""Where a server saturates: knee detection over the steps of a load sweep.

A sweep runs the same workload at increasing load (request rates, or
concurrency levels). Below saturation, more offered load buys proportionally
more throughput at roughly constant latency; past it, throughput flattens while
requests queue, so latency and the engine's queue depth climb. The *knee* is the
last step before that happens: the highest load worth running at.

Rates for a sweep follow GuideLLM's ``sweep`` profile: a synchronous step and a
max-throughput step bracket the range, and constant-rate steps are spread
evenly in between (:func:`sweep_rates`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gemmawatch.collectors.load.metrics import LoadSummary
from gemmawatch.errors import ConfigError

__all__ = ["Knee", "StepPoint", "find_knee", "sweep_rates"]


@dataclass
class StepPoint:
    """One sweep step as the knee detector sees it.

    ``offered`` is the offered request rate (requests/s) of an open-loop step and
    None for a closed-loop one; ``concurrency`` is the number of simulated users of
    a closed-loop step and None for an open-loop one. ``queue_depth`` is an engine
    metric (e.g. vLLM's ``num_requests_waiting``, averaged over the step) when the
    server exposes one. ``telemetry`` carries any other per-step readings
    (GPU utilisation, memory...) for display; the detector ignores it.
    """

    step: int
    offered: float | None
    concurrency: int | None
    request_throughput: float
    output_throughput: float | None = None
    ttft_p50_s: float | None = None
    e2e_p50_s: float | None = None
    e2e_p99_s: float | None = None
    queue_depth: float | None = None
    telemetry: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_summary(
        cls,
        step: int,
        summary: LoadSummary,
        *,
        offered: float | None = None,
        concurrency: int | None = None,
        queue_depth: float | None = None,
        telemetry: dict[str, Any] | None = None,
    ) -> StepPoint:
        """Build a point from a step's :class:`LoadSummary` (no throughput counts as 0)."""
        return cls(
            step=step,
            offered=offered,
            concurrency=concurrency,
            request_throughput=summary.request_throughput or 0.0,
            output_throughput=summary.output_throughput,
            ttft_p50_s=summary.ttft_p50_s,
            e2e_p50_s=summary.e2e_p50_s,
            e2e_p99_s=summary.e2e_p99_s,
            queue_depth=queue_depth,
            telemetry=dict(telemetry or {}),
        )


@dataclass
class Knee:
    """The saturation point of a sweep.

    ``step`` is the last step before throughput stopped rising, ``reason`` one
    sentence with the figures that show it, ``max_throughput`` the highest request
    throughput of any step, and ``points`` the steps in load order.
    """

    step: int
    reason: str
    max_throughput: float
    points: list[StepPoint]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the points as dicts, in load order)."""
        return asdict(self)


def _ordered(points: Sequence[StepPoint]) -> list[StepPoint]:
    """Steps in increasing offered load.

    An all-closed-loop sweep is ordered by concurrency. Otherwise open-loop steps
    go by offered rate and closed-loop ones (GuideLLM's synchronous and throughput
    steps) by the rate they achieved, since a closed loop offers what it achieves.
    """
    if all(p.offered is None and p.concurrency is not None for p in points):
        return sorted(points, key=lambda p: p.concurrency or 0)
    return sorted(points, key=_load)


def _load(p: StepPoint) -> float:
    return p.offered if p.offered is not None else p.request_throughput


def _expected_gain(a: StepPoint, b: StepPoint) -> float:
    """Throughput the load increase from ``a`` to ``b`` would add on an unsaturated server."""
    if a.offered is None and b.offered is None and a.concurrency and b.concurrency:
        # Closed loop: with latency unchanged, throughput scales with the number of users (Little's law).
        return a.request_throughput * (b.concurrency / a.concurrency - 1.0)
    return _load(b) - _load(a)


def _rise(before: float | None, after: float | None) -> float | None:
    """Relative increase, None when either side is unknown (inf when rising from 0)."""
    if before is None or after is None:
        return None
    if before <= 0:
        return math.inf if after > 0 else 0.0
    return after / before - 1.0


def _climbing(a: StepPoint, b: StepPoint, min_rise: float) -> str | None:
    """Describe the first latency/queue signal that rose by more than ``min_rise``, else None."""
    for label, x, y, unit in (
        ("p50 E2E", a.e2e_p50_s, b.e2e_p50_s, "s"),
        ("p50 TTFT", a.ttft_p50_s, b.ttft_p50_s, "s"),
        ("queue depth", a.queue_depth, b.queue_depth, ""),
    ):
        rise = _rise(x, y)
        if rise is None or rise <= min_rise:
            continue
        if label == "queue depth" and x is not None and y is not None and x <= 0 and y < 1:
            continue  # from an empty queue, a fraction of a waiting request is noise
        pct = "from 0" if math.isinf(rise) else f"{rise:.0%}"
        return f"{label} rose {pct} ({x:.3g}{unit} -> {y:.3g}{unit})"
    return None


def _flat(a: StepPoint, b: StepPoint, min_gain: float, min_achieved: float) -> str | None:
    """Describe why throughput did not keep up from ``a`` to ``b``, else None."""
    gain = b.request_throughput - a.request_throughput
    if b.offered is not None and b.offered > 0 and b.request_throughput < min_achieved * b.offered:
        return (
            f"step {b.step} achieved {b.request_throughput:.3g} req/s of {b.offered:.3g} offered "
            f"({b.request_throughput / b.offered:.0%})"
        )
    expected = _expected_gain(a, b)
    if expected > 0 and gain < min_gain * expected:
        return (
            f"step {b.step} gained {gain:+.3g} req/s ({a.request_throughput:.3g} -> {b.request_throughput:.3g}) "
            f"for {expected:.3g} req/s more load"
        )
    return None


def find_knee(
    points: Sequence[StepPoint],
    *,
    min_gain: float = 0.10,
    min_achieved: float = 0.90,
    min_rise: float = 0.20,
) -> Knee | None:
    """The first step after which throughput stops rising while latency or queueing climbs.

    Steps are compared pairwise in load order (see :func:`_ordered`). Step ``a`` is
    the knee when the next step ``b``:

    * stops gaining throughput: its gain is below ``min_gain`` times the load
      increase (for concurrency steps, times the gain linear scaling would give),
      or, for an open-loop step, it achieves less than ``min_achieved`` of its
      offered rate; **and**
    * queues: p50 E2E, p50 TTFT or queue depth rises by more than ``min_rise``.

    Returns None with fewer than 3 points (two points cannot tell a knee from
    noise) and when no step shows saturation (the sweep never reached it).
    """
    if len(points) < 3:
        return None
    ordered = _ordered(points)
    for a, b in zip(ordered, ordered[1:], strict=False):
        flat = _flat(a, b, min_gain, min_achieved)
        climb = _climbing(a, b, min_rise) if flat else None
        if flat and climb:
            head = f"Throughput stopped rising after step {a.step} ({a.request_throughput:.3g} req/s)"
            reason = f"{head}: {flat}, while {climb}."
            return Knee(
                step=a.step,
                reason=reason,
                max_throughput=max(p.request_throughput for p in ordered),
                points=ordered,
            )
    return None


def sweep_rates(sync_throughput: float, max_throughput: float, steps: int) -> list[float]:
    """The constant rates of a ``steps``-step sweep, evenly spaced strictly between two bounds.

    The synchronous and max-throughput steps are two of the ``steps``, so ``steps - 2``
    rates are returned (none for ``steps == 2``). GuideLLM's sweep ends its rates *at*
    the measured maximum; we stop one interval short because the throughput step has
    already measured that load. When concurrency bought less than 10% more throughput
    (a server that runs one request at a time), the upper bound becomes ``OVERLOAD`` x
    the best measured rate instead: offering more than the server can do
    is what shows where latency takes off. All zero (nothing completed): no rates.
    Raises :class:`~gemmawatch.errors.ConfigError` when ``steps < 2``.
    """
    if steps < 2:
        raise ConfigError(f"Invalid sweep size {steps}: expected at least 2 steps (synchronous and throughput)")
    for label, value in (("synchronous", sync_throughput), ("max", max_throughput)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{label} throughput must be a finite rate >= 0, got {value!r}")
    low, high = min(sync_throughput, max_throughput), max(sync_throughput, max_throughput)
    if high <= 0:
        return []
    if max_throughput < 1.1 * sync_throughput:
        high = OVERLOAD * high
    width = (high - low) / (steps - 1)
    return [low + i * width for i in range(1, steps - 1)]


#: Upper bound of a sweep's rates, relative to the best measured rate, when concurrency did not scale.
OVERLOAD = 1.5
