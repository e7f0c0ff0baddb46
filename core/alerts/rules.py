"""Alert rules: the interface and the threshold rule.

A rule looks at :class:`RunFacts` and answers with an :class:`Evaluation`
(breached or not, with the value it looked at) or ``None`` for "no data":
the engine then leaves the alert state untouched, so a run that simply did
not measure latency never resolves a latency alert.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gemmawatch.alerts.facts import RunFacts

Comparator = Literal["<", "<=", ">", ">="]
Severity = Literal["info", "warning", "critical"]

#: ``value <comparator> threshold`` means the rule is *breached* (the bad side).
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

#: Telemetry references are written ``agg(metric)``, e.g. ``max(process.rss_mb)``.
TELEMETRY_REF = re.compile(r"^(min|avg|max)\(([^()\s]+)\)$")


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one rule on one run's facts.

    Attributes:
        rule: Name of the rule.
        breached: True when ``value comparator threshold`` holds (alert should fire).
        value: The value compared: for a task glob matching several tasks the
            worst one (the smallest for ``<``/``<=``, the largest for ``>``/``>=``).
        subject: What was measured, e.g. ``"latency/e2e_s_p95"`` or ``"max(process.rss_mb)"``.
        comparator: The rule's comparator.
        threshold: The rule's threshold.
    """

    rule: str
    breached: bool
    value: float
    subject: str
    comparator: str
    threshold: float

    def message(self, run_id: int) -> str:
        """One line for alert lists and CLI output."""
        if self.breached:
            return (
                f"{self.rule}: {self.subject} = {self.value:.4g} {self.comparator} "
                f"threshold {self.threshold:g} (run {run_id})"
            )
        return (
            f"{self.rule}: {self.subject} = {self.value:.4g} is within threshold "
            f"(alert when {self.comparator} {self.threshold:g}) (run {run_id})"
        )


@runtime_checkable
class AlertRule(Protocol):
    """Anything the alert engine can evaluate against a run."""

    @property
    def name(self) -> str:
        """Unique rule name (the key in the ``alert_rules`` table)."""
        ...

    @property
    def severity(self) -> str:
        """``info``, ``warning`` or ``critical``."""
        ...

    def evaluate(self, facts: RunFacts) -> Evaluation | None:
        """Judge the facts; ``None`` means no data (do not change the alert state)."""
        ...


class ThresholdRule(BaseModel):
    """``<metric> <comparator> <threshold>`` is a breach.

    ``metric`` is either an eval metric name (``acc``, ``e2e_s_p95``; with an
    lm-eval filter ``exact_match,strict-match``) selected by ``task``, an
    fnmatch glob (``smoke*``; ``None`` matches every task), or a telemetry
    aggregate ``min(...)``/``avg(...)``/``max(...)`` such as
    ``max(process.rss_mb)``, which takes no task. Comparators are strict or not
    as written: with ``>`` a value equal to the threshold is fine.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Unique rule name.")
    metric: str = Field(min_length=1, description="Metric, or telemetry max(process.rss_mb).")
    comparator: Comparator = Field(description="Breach when value <comparator> threshold.")
    threshold: float = Field(description="The limit, in the metric's unit.")
    severity: Severity = Field(default="warning", description="info, warning or critical.")
    task: str | None = Field(default=None, description="Task name or fnmatch glob; None = any task.")
    description: str = Field(default="", description="Why the rule exists, shown in the UI.")
    kind: Literal["threshold"] = "threshold"

    @field_validator("name", "metric")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _telemetry_has_no_task(self) -> ThresholdRule:
        if self.telemetry_ref is not None and self.task is not None:
            raise ValueError(f"telemetry metric {self.metric} takes no task; remove 'task'")
        if self.telemetry_ref is None and ("(" in self.metric or ")" in self.metric):
            raise ValueError(f"{self.metric!r}: write telemetry aggregates as min(x), avg(x) or max(x)")
        return self

    @property
    def telemetry_ref(self) -> tuple[str, str] | None:
        """``(aggregate, telemetry metric)`` when this rule reads telemetry, else None."""
        m = TELEMETRY_REF.match(self.metric)
        return (m.group(1), m.group(2)) if m else None

    def evaluate(self, facts: RunFacts) -> Evaluation | None:
        """Compare the run's value with the threshold; None when the run has no such value."""
        ref = self.telemetry_ref
        if ref is not None:
            agg, name = ref
            stat = facts.telemetry.get(name)
            if stat is None:
                return None
            value: float = getattr(stat, agg)
            subject = self.metric
        else:
            pattern = self.task or "*"
            found = [
                (task, v)
                for (task, metric), v in facts.metrics.items()
                if metric == self.metric and fnmatchcase(task, pattern) and math.isfinite(v)
            ]
            if not found:
                return None
            # The worst matching task decides: it is the one that would breach first.
            pick = min if self.comparator in ("<", "<=") else max
            task, value = pick(found, key=lambda tv: tv[1])
            subject = f"{task}/{self.metric}"
        if not math.isfinite(value):
            return None
        return Evaluation(
            rule=self.name,
            breached=COMPARE[self.comparator](value, self.threshold),
            value=value,
            subject=subject,
            comparator=self.comparator,
            threshold=self.threshold,
        )
