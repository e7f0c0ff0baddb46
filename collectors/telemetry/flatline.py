"""Flat-lined sensors: a series that kept exactly one value for a long window while the load moved.

A sensor that stops updating (a stuck power reading, a frozen utilisation
counter, an exporter serving a cached value) still produces rows, so gaps do
not reveal it; identical values do, but only when the machine was doing
something: an idle GPU legitimately reads the same power for a while. So a
series is *flat-lined* when its value stayed exactly constant for at least
``min_duration_s`` while the load metric (``cpu.percent`` by default) varied:
the standard deviation of its means over ``load_bucket_s`` buckets (averaging
removes the jitter of 10 Hz readings; by default 5 s, or a sixth of a shorter
window) reached ``min_load_stdev``.

Only sensor series are judged (:data:`DEFAULT_FLATLINE_METRICS`): gauges
that keep moving on a working machine. Counters, flags, memory allocations
(vLLM reserves GPU memory once), clocks (set points) and per-process CPU (a
busy-polling process reads exactly 100) are legitimately constant. A value of
0, or of 100 for a ``%`` metric, is never flagged: idle and saturated are real
states.

Two entry points with the same rule: :func:`flatlined_series` judges stored
rows after the fact; :class:`FlatlineTracker` runs inside the sampler and emits
one ``telemetry.flatlined`` row per episode.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

#: Series judged by default: sensors whose value moves whenever the machine works.
DEFAULT_FLATLINE_METRICS: tuple[str, ...] = (
    "gpu.power_w",
    "gpu.utilization",
    "cpu.core_percent",
    "cpu.load_1m",
    "memory.used_mb",
)
#: The metric of the rows the tracker emits.
FLATLINED_METRIC = "telemetry.flatlined"
#: Their ``source``.
FLATLINE_SOURCE = "sampler"

DEFAULT_MIN_DURATION_S = 60.0
DEFAULT_MIN_LOAD_STDEV = 5.0  #: percentage points of cpu.percent, over bucket means
DEFAULT_LOAD_BUCKET_S = 5.0


def _bucket_s(window_s: float, load_bucket_s: float | None) -> float:
    return load_bucket_s if load_bucket_s is not None else min(DEFAULT_LOAD_BUCKET_S, window_s / 6.0)


def _seconds(ts: Any) -> float:
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def _labels_key(labels: Mapping[str, Any] | None) -> Any:
    if not labels:
        return ()
    try:
        return tuple(sorted(labels.items()))
    except TypeError:  # unhashable or unorderable label values
        return json.dumps(labels, sort_keys=True, default=str)


def _judged(value: float, unit: str) -> bool:
    """Whether a constant ``value`` could be a flat line (0 and a saturated 100 % are real states)."""
    return value != 0.0 and not (unit == "%" and value >= 100.0)


def _bucket_stdev(points: Iterable[tuple[float, float]], bucket_s: float) -> float | None:
    """Population stdev of the per-bucket means of (seconds, value) points; None for fewer than 2 buckets."""
    sums: dict[int, list[float]] = {}
    for t, v in points:
        acc = sums.setdefault(int(t // bucket_s), [0.0, 0.0])
        acc[0] += v
        acc[1] += 1.0
    means = [s / n for s, n in sums.values()]
    if len(means) < 2:
        return None
    mean = sum(means) / len(means)
    return math.sqrt(sum((m - mean) ** 2 for m in means) / len(means))


def flatlined_series(
    rows: Iterable[Mapping[str, Any]],
    *,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    load_metric: str = "cpu.percent",
    metrics: Collection[str] = DEFAULT_FLATLINE_METRICS,
    min_load_stdev: float = DEFAULT_MIN_LOAD_STDEV,
    load_bucket_s: float | None = None,
) -> list[dict[str, Any]]:
    """Series of ``rows`` that stayed exactly constant for ``min_duration_s`` while the load varied.

    ``rows`` are telemetry row dicts (keys ``metric``, ``value``, ``ts``
    (datetime or epoch seconds), ``source``, ``unit``, ``labels``; ``host``
    when present). A series is one (host, source, metric, labels); the load is
    ``load_metric`` of the same host. For each series the longest run of
    consecutive identical values lasting ``min_duration_s`` or more (first to
    last reading of the run) is judged, and the series is returned when the
    load's bucket-mean standard deviation within that run is at least
    ``min_load_stdev`` (see the module docstring for which series are judged).

    Returns:
        One dict per flat-lined series, in (host, source, metric) order: ``host``,
        ``source``, ``metric``, ``unit``, ``labels``, ``value`` (the stuck value),
        ``start``, ``end`` (the run's first and last ``ts`` as given),
        ``duration_s``, ``load_stdev``.
    """
    if min_duration_s <= 0:
        raise ValueError(f"min_duration_s must be > 0, got {min_duration_s}")
    bucket_s = _bucket_s(min_duration_s, load_bucket_s)
    series: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    load: dict[Any, list[tuple[float, float]]] = {}
    wanted = set(metrics) - {load_metric}
    for row in rows:
        metric = row.get("metric")
        if metric == load_metric:
            load.setdefault(row.get("host"), []).append((_seconds(row["ts"]), float(row["value"])))
        elif metric in wanted:
            key = (row.get("host"), row.get("source"), metric, _labels_key(row.get("labels")))
            series.setdefault(key, []).append(row)
    for load_points in load.values():
        load_points.sort()
    found = []
    for key in sorted(series, key=lambda k: (str(k[0]), str(k[1]), str(k[2]), str(k[3]))):
        ordered = sorted(series[key], key=lambda r: _seconds(r["ts"]))
        best = _longest_constant_run(ordered, min_duration_s)
        if best is None:
            continue
        first, last = best
        lo, hi = _seconds(first["ts"]), _seconds(last["ts"])
        window = [(t, v) for t, v in load.get(key[0], ()) if lo <= t <= hi]
        stdev = _bucket_stdev(window, bucket_s)
        if stdev is None or stdev < min_load_stdev:
            continue
        found.append(
            {
                "host": key[0],
                "source": key[1],
                "metric": key[2],
                "unit": first.get("unit"),
                "labels": dict(first.get("labels") or {}),
                "value": float(first["value"]),
                "start": first["ts"],
                "end": last["ts"],
                "duration_s": hi - lo,
                "load_stdev": stdev,
            }
        )
    return found


def _longest_constant_run(
    points: list[Mapping[str, Any]], min_duration_s: float
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(first, last) row of the longest run of identical judged values lasting ``min_duration_s``."""
    best: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
    best_len = -1.0
    start = 0
    for i in range(1, len(points) + 1):
        if i < len(points) and float(points[i]["value"]) == float(points[start]["value"]):
            continue
        first, last = points[start], points[i - 1]
        duration = _seconds(last["ts"]) - _seconds(first["ts"])
        value = float(first["value"])
        if duration >= min_duration_s and duration > best_len and _judged(value, str(first.get("unit") or "")):
            best, best_len = (first, last), duration
        start = i
    return best


class FlatlineTracker:
    """The sampler's incremental flat-line check: feed each tick's rows, get flag rows back.

    Per judged series it keeps (value, since, flagged); for the load it keeps
    running per-bucket sums over the last ``window_s``. When a series has held
    one value for ``window_s`` and the load's bucket-mean standard deviation
    over the last ``window_s`` reaches ``min_load_stdev``, :meth:`update`
    returns one ``telemetry.flatlined`` row (value 1, unit ``bool``, source
    ``sampler``, labels = the series' labels plus ``metric`` and ``source``
    naming it); the series is not flagged again until its value changes. A
    tick costs a dict lookup per judged row; series not seen for a window are
    forgotten.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_MIN_DURATION_S,
        *,
        load_metric: str = "cpu.percent",
        metrics: Collection[str] = DEFAULT_FLATLINE_METRICS,
        min_load_stdev: float = DEFAULT_MIN_LOAD_STDEV,
        load_bucket_s: float | None = None,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = float(window_s)
        self.load_metric = load_metric
        self.metrics = frozenset(metrics) - {load_metric}
        self.min_load_stdev = float(min_load_stdev)
        self.load_bucket_s = _bucket_s(self.window_s, load_bucket_s)
        self._series: dict[tuple[Any, ...], list[Any]] = {}  # key -> [value, since, flagged, last_seen]
        self._buckets: deque[list[float]] = deque()  # [bucket index, sum, count]
        self._last_prune = -math.inf

    def update(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Take one tick's rows (all with the same ``ts``); return flag rows to store with them."""
        flags: list[dict[str, Any]] = []
        load_stdev: float | None = None
        load_known = False
        now: float | None = None
        for row in rows:
            metric = row["metric"]
            if metric == self.load_metric:
                now = _seconds(row["ts"]) if now is None else now
                self._add_load(now, float(row["value"]))
                continue
            if metric not in self.metrics:
                continue
            now = _seconds(row["ts"]) if now is None else now
            key = (row["source"], metric, _labels_key(row["labels"]))
            value = float(row["value"])
            state = self._series.get(key)
            if state is None or state[0] != value or not _judged(value, row["unit"]):
                self._series[key] = [value, now, False, now]
                continue
            state[3] = now
            if state[2] or now - state[1] < self.window_s:
                continue
            if not load_known:
                load_stdev, load_known = self._load_stdev(now), True
            if load_stdev is not None and load_stdev >= self.min_load_stdev:
                state[2] = True
                flags.append(self._flag_row(row))
        if now is not None and now - self._last_prune >= self.window_s:
            self._prune(now)
        return flags

    def _add_load(self, now: float, value: float) -> None:
        index = float(now // self.load_bucket_s)
        if self._buckets and self._buckets[-1][0] == index:
            self._buckets[-1][1] += value
            self._buckets[-1][2] += 1.0
        else:
            self._buckets.append([index, value, 1.0])
        oldest = (now - self.window_s) // self.load_bucket_s
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()

    def _load_stdev(self, now: float) -> float | None:
        oldest = (now - self.window_s) // self.load_bucket_s
        means = [s / n for index, s, n in self._buckets if index >= oldest]
        if len(means) < 2:
            return None
        mean = sum(means) / len(means)
        return math.sqrt(sum((m - mean) ** 2 for m in means) / len(means))

    def _prune(self, now: float) -> None:
        self._last_prune = now
        stale = [key for key, state in self._series.items() if now - state[3] > self.window_s]
        for key in stale:
            del self._series[key]

    @staticmethod
    def _flag_row(row: Mapping[str, Any]) -> dict[str, Any]:
        labels = {**(row.get("labels") or {}), "metric": row["metric"], "source": row["source"]}
        return {
            **row,
            "source": FLATLINE_SOURCE,
            "metric": FLATLINED_METRIC,
            "unit": "bool",
            "value": 1.0,
            "labels": labels,
        }
