"""Energy figures derived from stored telemetry rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
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
