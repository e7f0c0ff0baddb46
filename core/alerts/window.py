"""Telemetry-window rules: an aggregation of recent readings, per series, against a threshold.

A :class:`WindowRule` (``source: telemetry``) selects telemetry readings by
``metric``, ``labels`` (every listed label must match; other labels are
ignored) and ``target`` (an fnmatch glob over the ``target`` label), takes
those in ``[now - window, now]``, splits them into *series* and aggregates
each series on its own, so every series alerts (and resolves) separately.

Series: readings are grouped by the values of ``group_by`` (``host`` means the
reading's host, any other name a label), by default ``host`` and ``target``.
Labels that vary from reading to reading, such as ``error_class`` on failed
probes, are deliberately not part of the default key: a failure and the next
success of the same endpoint must land in the same series, or the alert could
never resolve. The series key is text such as ``host=h1,target=gemma-prod``;
it is stored on the alert (one unresolved alert per rule and series).

Aggregations (:data:`AGGREGATIONS`), over the readings of one series in time order:

* ``last``, ``avg``, ``min``, ``max``;
* ``p95``: 95th percentile, linear interpolation (as ``numpy.percentile``);
* ``rate``: per-second increase of a counter, ``(last - first) / seconds``
  between the first and last reading; a decrease is a counter reset (the new
  value counts as the increase since the reset). Needs two readings at
  different times;
* ``error_ratio``: share of readings that are not 0, i.e. the mean of a 0/1
  error flag such as ``probe.error``.

No readings in the window (or too few for ``rate``) is *no data*: the alert
state does not change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from gemmawatch.alerts.durations import format_duration, parse_duration
from gemmawatch.alerts.rules import COMPARE, Comparator, Evaluation, RuleBase

Aggregation = Literal["last", "avg", "min", "max", "p95", "rate", "error_ratio"]

#: Series key of a rule without ``group_by``.
DEFAULT_GROUP_BY: tuple[str, ...] = ("host", "target")

#: A reading: (seconds, value); seconds on any monotonic scale (epoch seconds).
Point = tuple[float, float]


def _p95(values: Sequence[float]) -> float:
    from gemmawatch.evals.stats import percentile

    return percentile(values, 95.0)


def _rate(points: Sequence[Point]) -> float | None:
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    increase = 0.0
    for (_, prev), (_, cur) in zip(points, points[1:], strict=False):
        increase += cur - prev if cur >= prev else cur  # a drop is a counter reset
    return increase / (points[-1][0] - points[0][0])


_BY_VALUES: dict[str, Callable[[Sequence[float]], float]] = {
    "avg": lambda v: math.fsum(v) / len(v),
    "min": min,
    "max": max,
    "p95": _p95,
    "error_ratio": lambda v: sum(1 for x in v if x != 0) / len(v),
}

#: The aggregation names, in the order documented above.
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def aggregate(name: str, points: Sequence[Point]) -> float | None:
    """Aggregate readings (sorted by time) with ``name``; None when there is no data.

    Raises:
        ValueError: Unknown aggregation name.
    """
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if not finite:
        return None
    if name == "last":
        return finite[-1][1]
    if name == "rate":
        return _rate(finite)
    fn = _BY_VALUES.get(name)
    if fn is None:
        raise ValueError(f"unknown aggregation {name!r}; use one of {', '.join(AGGREGATIONS)}")
    return float(fn([v for _, v in finite]))


def series_labels(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, str]:
    """The values of ``keys`` for one reading (``host`` or a label); missing ones are left out."""
    labels = row.get("labels") or {}
    out: dict[str, str] = {}
    for key in keys:
        value = row.get("host") if key == "host" else labels.get(key)
        if value is not None and value != "":
            out[key] = str(value)
    return out


def series_key(labels: Mapping[str, str]) -> str:
    """``host=h1,target=gemma`` (in the rule's key order)."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def group_series(
    rows: Iterable[Mapping[str, Any]], keys: Sequence[str], *, runs: dict[str, int | None] | None = None
) -> dict[str, tuple[dict[str, str], list[Point]]]:
    """Split readings (dicts with ts, value, host, labels) into series: key -> (labels, points by time).

    ``runs``, when given, receives each series' latest ``run_id`` (rows in time order).
    """
    groups: dict[str, tuple[dict[str, str], list[Point]]] = {}
    for row in rows:
        labels = series_labels(row, keys)
        key = series_key(labels)
        ts = row["ts"]
        seconds = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        groups.setdefault(key, (labels, []))[1].append((seconds, float(row["value"])))
        if runs is not None and row.get("run_id") is not None:
            runs[key] = int(row["run_id"])
    for _, points in groups.values():
        points.sort(key=lambda p: p[0])
    return groups


class WindowRule(RuleBase):
    """``<aggregation>(<metric>) over <window> <comparator> <threshold>``, per series, is a breach."""

    kind: Literal["threshold"] = "threshold"
    source: Literal["telemetry"]
    metric: str = Field(min_length=1, description="Telemetry metric name, e.g. probe.e2e_s.")
    aggregation: Aggregation = Field(default="avg", description="How the window's readings become one value.")
    window_s: float = Field(default=300.0, alias="window", description="Seconds of readings looked at.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels a reading must carry.")
    group_by: tuple[str, ...] | None = Field(default=None, description="Series key; default host and target.")
    comparator: Comparator = Field(description="Breach when value <comparator> threshold.")
    threshold: float = Field(description="The limit, in the metric's unit.")

    @field_validator("metric")
    @classmethod
    def _plain_metric(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        if "(" in v or ")" in v:
            raise ValueError(f"{v!r}: give the plain metric name and put the aggregation under 'aggregation:'")
        return v

    @field_validator("window_s", mode="before")
    @classmethod
    def _window_duration(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, Mapping):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _target_label_not_twice(self) -> WindowRule:
        if self.target is not None and "target" in self.labels:
            raise ValueError("give the target either as 'target:' or as labels.target, not both")
        return self

    @property
    def series_by(self) -> tuple[str, ...]:
        """The series key names in effect."""
        return DEFAULT_GROUP_BY if self.group_by is None else self.group_by

    @property
    def subject(self) -> str:
        """``p95(probe.e2e_s) over 5m``."""
        return f"{self.aggregation}({self.metric}) over {format_duration(self.window_s)}"

    @property
    def condition(self) -> str:
        """The breach condition in words: ``max(probe.up) over 1m < 1 per target``."""
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        metric = f"{self.metric}{{{labels}}}" if labels else self.metric
        per = f" per {', '.join(self.series_by)}" if self.series_by else ""
        window = format_duration(self.window_s)
        return f"{self.aggregation}({metric}) over {window} {self.comparator} {self.threshold:g}{per}"

    def evaluate_points(self, points: Sequence[Point], *, series: str = "") -> Evaluation | None:
        """Judge one series' readings (sorted by time); None when there is no data."""
        value = aggregate(self.aggregation, points)
        if value is None or not math.isfinite(value):
            return None
        return Evaluation(
            rule=self.name,
            breached=COMPARE[self.comparator](value, self.threshold),
            value=value,
            subject=self.subject,
            comparator=self.comparator,
            threshold=self.threshold,
            note=f"{series}, {len(points)} reading(s)" if series else f"{len(points)} reading(s)",
        )
