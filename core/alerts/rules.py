"""Alert rules: the shared fields, the evaluation result, and the threshold rule on runs.

Three kinds of rule exist, one pydantic model each (all frozen, unknown fields
rejected):

* :class:`ThresholdRule` (``kind: threshold``, ``source: run``, this module):
  a metric of one run (``task``/``metric``, or a run telemetry aggregate such
  as ``max(process.rss_mb)``) compared with a threshold after every run;
* :class:`~gemmawatch.alerts.window.WindowRule` (``kind: threshold``,
  ``source: telemetry``): an aggregation of telemetry readings over a time
  window, per series, on every monitor tick;
* :class:`~gemmawatch.alerts.regression.RegressionRule` (``kind: regression``):
  a run's metric against a baseline run's, with a paired significance test.

A rule answers with an :class:`Evaluation` (breached or not, with the value it
looked at) or ``None`` for "no data": the engine then leaves the alert state
untouched, so a run that simply did not measure latency never resolves a
latency alert.

Shared fields (:class:`RuleBase`): ``name``, ``severity``, ``description``,
``target`` (fnmatch glob over target names; None = any), ``for`` (how long a
breach must last before the alert fires; 0 = at once, else it is *pending*
first), ``notify`` (Apprise URLs, in addition to the per-severity ones of the
config's ``notifications:``) and ``enabled``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gemmawatch.alerts.durations import parse_duration
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
    """The outcome of one rule on one run's facts or one telemetry series.

    Attributes:
        rule: Name of the rule.
        breached: True when ``value comparator threshold`` holds (alert should fire).
        value: The value compared: for a task glob matching several tasks the
            worst one (the smallest for ``<``/``<=``, the largest for ``>``/``>=``);
            for a regression rule the drop.
        subject: What was measured, e.g. ``"latency/e2e_s_p95"`` or ``"max(process.rss_mb)"``.
        comparator: The rule's comparator.
        threshold: The rule's threshold.
        note: Extra context appended to the message (series, readings).
        summary: When set, the whole message after ``"<rule>: "`` (regression
            rules word their verdict themselves).
    """

    rule: str
    breached: bool
    value: float
    subject: str
    comparator: str
    threshold: float
    note: str = ""
    summary: str = ""

    def message(self, run_id: int | None = None) -> str:
        """One line for alert lists, events, notifications and CLI output."""
        if self.summary:
            text = f"{self.rule}: {self.summary}"
        elif self.breached:
            text = f"{self.rule}: {self.subject} = {self.value:.4g} {self.comparator} threshold {self.threshold:g}"
        else:
            text = (
                f"{self.rule}: {self.subject} = {self.value:.4g} is within threshold "
                f"(alert when {self.comparator} {self.threshold:g})"
            )
        if self.note and not self.summary:
            text += f"; {self.note}"
        return text if run_id is None else f"{text} (run {run_id})"


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


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class RuleBase(BaseModel):
    """Fields every rule kind has (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, description="Unique rule name.")
    severity: Severity = Field(default="warning", description="info, warning or critical.")
    description: str = Field(default="", description="Why the rule exists, shown in the UI.")
    target: str | None = Field(default=None, description="fnmatch glob over target names; None = any target.")
    for_s: float = Field(default=0.0, alias="for", description="Seconds a breach must last before firing.")
    notify: tuple[str, ...] = Field(default=(), description="Apprise URLs notified on firing and resolved.")
    enabled: bool = Field(default=True, description="Disabled rules are stored but not evaluated.")

    @field_validator("name")
    @classmethod
    def _strip_name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    @field_validator("target")
    @classmethod
    def _blank_target_is_any(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @field_validator("for_s", mode="before")
    @classmethod
    def _for_duration(cls, v: Any) -> float:
        return parse_duration(v, allow_zero=True)

    @field_validator("notify", mode="before")
    @classmethod
    def _notify_list(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, str):
            v = [v]
        for url in v:
            if not isinstance(url, str) or "://" not in url:
                raise ValueError(f"{shown_url(url)} is not a notification URL (it has no SCHEME:// prefix)")
        return tuple(u.strip() for u in v)

    def applies_to(self, target: str | None) -> bool:
        """Whether this rule watches ``target`` (a target name; None for target-less data)."""
        if self.target is None:
            return True
        return target is not None and fnmatchcase(target, self.target)


def shown_url(url: Any) -> str:
    """A URL for an error message, with anything secret-looking redacted."""
    if not isinstance(url, str):
        return repr(url)
    try:
        from gemmawatch.alerts.notify import redact_url
    except ImportError:  # pragma: no cover - the notifier ships with the engine
        return repr(url.split("://")[0] + "://***") if "://" in url else "'***'"
    return repr(redact_url(url))


class ThresholdRule(RuleBase):
    """``<metric> <comparator> <threshold>`` on one run is a breach.

    ``metric`` is either an eval metric name (``acc``, ``e2e_s_p95``; with an
    lm-eval filter ``exact_match,strict-match``) selected by ``task``, an
    fnmatch glob (``smoke*``; ``None`` matches every task), or a telemetry
    aggregate ``min(...)``/``avg(...)``/``max(...)`` over the run such as
    ``max(process.rss_mb)``, which takes no task. Comparators are strict or not
    as written: with ``>`` a value equal to the threshold is fine.
    """

    metric: str = Field(min_length=1, description="Metric, or telemetry max(process.rss_mb).")
    comparator: Comparator = Field(description="Breach when value <comparator> threshold.")
    threshold: float = Field(description="The limit, in the metric's unit.")
    task: str | None = Field(default=None, description="Task name or fnmatch glob; None = any task.")
    kind: Literal["threshold"] = "threshold"
    source: Literal["run"] = "run"

    @field_validator("metric")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    _finite_threshold = field_validator("threshold")(_finite)

    @model_validator(mode="after")
    def _telemetry_has_no_task(self) -> ThresholdRule:
        if self.telemetry_ref is not None and self.task is not None:
            raise ValueError(f"telemetry metric {self.metric} takes no task; remove 'task'")
        if self.telemetry_ref is None and ("(" in self.metric or ")" in self.metric):
            raise ValueError(f"{self.metric!r}: write telemetry aggregates as min(x), avg(x) or max(x)")
        return self

    @property
    def condition(self) -> str:
        """The breach condition in words: ``latency/e2e_s_p95 > 10``."""
        where = f"{self.task}/" if self.task and self.telemetry_ref is None else ""
        return f"{where}{self.metric} {self.comparator} {self.threshold:g}"

    @property
    def telemetry_ref(self) -> tuple[str, str] | None:
        """``(aggregate, telemetry metric)`` when this rule reads telemetry, else None."""
        m = TELEMETRY_REF.match(self.metric)
        return (m.group(1), m.group(2)) if m else None

    def evaluate(self, facts: RunFacts) -> Evaluation | None:
        """Compare the run's value with the threshold; None when the run has no such value."""
        if not self.applies_to(facts.target):
            return None
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
