"""Energy figures derived from stored telemetry rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

#: The NVML energy counter metric (joules since the driver was loaded).
ENERGY_METRIC = "gpu.energy_j"


def energy_joules(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """GPU energy spent over the window ``rows`` cover, in joules, summed over devices.

    ``rows`` are telemetry row dicts (keys ``metric``, ``value``, ``ts``,
    ``labels``; ``host`` when present); rows of other metrics are ignored.
    Per (host, device) the ``gpu.energy_j`` readings are put in time order and
    their positive consecutive differences are summed, which is ``last - first``
    for a counter that only grows; a negative difference (the counter restarted
    with the driver) is ignored, so energy across a restart is undercounted
    rather than invented.

    Returns:
        The joules, or ``None`` when no device has two readings of the counter
        (no energy counter, or a window too short to measure anything).
    """
    series: dict[tuple[Any, str], list[tuple[Any, float]]] = defaultdict(list)
    for row in rows:
        if row.get("metric") != ENERGY_METRIC:
            continue
        value = row.get("value")
        if value is None or not math.isfinite(float(value)):
            continue
        labels = row.get("labels") or {}
        series[(row.get("host"), str(labels.get("device", "")))].append((row["ts"], float(value)))
    total: float | None = None
    for points in series.values():
        if len(points) < 2:
            continue
        points.sort(key=lambda point: point[0])
        spent = sum(max(0.0, b - a) for (_, a), (_, b) in pairwise(points))
        total = spent if total is None else total + spent
    return total


def _energy_series(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, str], list[tuple[float, float]]]:
    """Per (host, device): the finite ``gpu.energy_j`` readings as (epoch seconds, joules), in time order."""
    series: dict[tuple[Any, str], list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.get("metric") != ENERGY_METRIC:
            continue
        value = row.get("value")
        if value is None or not math.isfinite(float(value)):
            continue
        ts = row["ts"]
        seconds = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        labels = row.get("labels") or {}
        series[(row.get("host"), str(labels.get("device", "")))].append((seconds, float(value)))
    for points in series.values():
        points.sort()
    return series


def energy_in_window(rows: Iterable[Mapping[str, Any]], start: datetime, end: datetime) -> float | None:
    """GPU joules spent between ``start`` and ``end``, summed over devices.

    The counter is interpolated linearly between readings, so a window shorter
    than the sampling interval (one short request) still gets its share of the
    energy of the interval it falls in. Per (host, device) the rows must hold a
    ``gpu.energy_j`` reading at or before ``start`` and one at or after ``end``
    (pass the readings bracketing the window, not only those inside it); a
    device without them is left out. A counter that went backwards (driver
    reload) contributes nothing for that step, as in :func:`energy_joules`.

    Returns:
        The joules, or ``None`` when no device's readings cover the window.
    """
    lo, hi = start.timestamp(), end.timestamp()
    total: float | None = None
    for points in _energy_series(rows).values():
        if not points or points[0][0] > lo or points[-1][0] < hi:
            continue
        spent = 0.0
        for (t0, v0), (t1, v1) in pairwise(points):
            overlap = min(t1, hi) - max(t0, lo)
            if overlap > 0 and t1 > t0:
                spent += max(0.0, v1 - v0) * overlap / (t1 - t0)
        total = spent if total is None else total + spent
    return total


def energy_per_token(rows: Iterable[Mapping[str, Any]], output_tokens: int) -> float | None:
    """GPU joules per generated token over the window ``rows`` cover.

    The energy is :func:`energy_joules` (every device the rows name, summed);
    the caller picks the window and counts the tokens generated in it.

    Returns:
        Joules per output token, or ``None`` when there is no usable energy
        counter in ``rows`` or ``output_tokens`` is 0.

    Raises:
        ValueError: ``output_tokens`` is negative.
    """
    if output_tokens < 0:
        raise ValueError(f"output_tokens must be >= 0, got {output_tokens}")
    if output_tokens == 0:
        return None
    joules = energy_joules(rows)
    return None if joules is None else joules / output_tokens
