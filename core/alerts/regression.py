"""Regression rules: did a run's metric drop against a baseline run, beyond noise?

A :class:`RegressionRule` (``kind: regression``) compares ``task``/``metric``
of the run just finished with the same metric of a *baseline* run:

* ``baseline: previous`` (default): the latest earlier completed run of the
  same target and the same kind that stored this metric;
* ``baseline: run:42``: run 42;
* ``baseline: label:release-1``: the latest completed run labelled
  ``release-1``, of the same target when there is one, else of any target.

The *drop* is ``baseline - current`` when higher is better (accuracy, refusal
rate on harmful prompts) and ``current - baseline`` otherwise (latency);
"higher is better" comes from the rule, else from the stored metric, else is
assumed. The rule is breached when ``drop > max_drop`` **and** the drop is
significant (``p < alpha``, default 0.05):

* with per-sample scores in both runs (``samples.scores[metric]``, paired by
  task and ``doc_id``): the exact McNemar test when every score is 0 or 1
  (:func:`gemmawatch.evals.parity.mcnemar_exact_p`), else a paired sign-flip
  permutation test of the mean difference (exact up to 16 pairs, else 20,000
  seeded random sign flips);
* without them: a two-sided z-test of the difference from the two metrics'
  standard errors (``stderr``, else the 95 % interval's half-width / 1.96),
  which ignores the pairing, and the message says so;
* with neither, the drop alone decides, and the message says so.

Both tests are two-sided; the direction is the drop's. The alert's value is
the drop, in the metric's unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

from pydantic import Field, field_validator

from gemmawatch.alerts.rules import Evaluation, RuleBase

_BASELINE = re.compile(r"^(previous|run:(\d+)|label:(.+))$")
BASELINE_HINT = "use previous, run:ID or label:NAME"

#: Pairs compared exhaustively by the sign-flip test (2**16 sign patterns).
EXACT_SIGN_FLIP_MAX = 16
SIGN_FLIP_RESAMPLES = 20_000


@dataclass(frozen=True)
class Significance:
    """The outcome of the significance test behind a regression decision.

    Attributes:
        test: Human name of the test (``McNemar exact``, ``paired sign-flip``,
            ``z-test on stored standard errors``), or ``none`` when nothing
            could be tested.
        p: Two-sided p-value, None when no test was possible.
        n: Pairs compared (0 for the unpaired z-test and for ``none``).
    """

    test: str
    p: float | None
    n: int = 0

    def describe(self) -> str:
        """``McNemar exact p=0.0021 on 80 paired samples``."""
        if self.p is None:
            return "no per-sample scores or intervals: judged on the drop alone"
        if self.n:
            return f"{self.test} p={self.p:.3g} on {self.n} paired samples"
        return f"no per-sample scores: {self.test} p={self.p:.3g} (unpaired)"


def mcnemar_test(pairs: Sequence[tuple[float, float]]) -> Significance:
    """Exact McNemar on 0/1 (baseline, current) pairs."""
    from gemmawatch.evals.parity import mcnemar_exact_p

    base_only = sum(1 for b, c in pairs if b and not c)
    cur_only = sum(1 for b, c in pairs if c and not b)
    return Significance("McNemar exact", mcnemar_exact_p(base_only, cur_only), len(pairs))


def sign_flip_test(pairs: Sequence[tuple[float, float]], *, seed: int = 0) -> Significance:
    """Paired permutation test of the mean difference: flip each pair's sign at random.

    ``p`` is the share of sign patterns whose |mean difference| is at least the
    observed one (the observed pattern included). Exact enumeration up to
    :data:`EXACT_SIGN_FLIP_MAX` pairs, else :data:`SIGN_FLIP_RESAMPLES` seeded draws.
    """
    import numpy as np

    diffs = np.array([c - b for b, c in pairs], dtype=float)
    n = int(diffs.size)
    if n == 0 or not np.any(diffs):
        return Significance("paired sign-flip", 1.0, n)
    observed = abs(diffs.mean())
    tol = 1e-12 * max(1.0, float(np.abs(diffs).max()))
    if n <= EXACT_SIGN_FLIP_MAX:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1 - 2 * ((codes >> np.arange(n)) & 1)
        means = np.abs((signs * diffs).mean(axis=1))
        return Significance("paired sign-flip (exact)", float(np.mean(means >= observed - tol)), n)
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(SIGN_FLIP_RESAMPLES, n))
    means = np.abs((signs * diffs).mean(axis=1))
    hits = int(np.sum(means >= observed - tol))
    return Significance("paired sign-flip", (hits + 1) / (SIGN_FLIP_RESAMPLES + 1), n)


def paired_test(pairs: Sequence[tuple[float, float]]) -> Significance:
    """McNemar for 0/1 scores, the sign-flip test otherwise."""
    if all(b in (0.0, 1.0) and c in (0.0, 1.0) for b, c in pairs):
        return mcnemar_test(pairs)
    return sign_flip_test(pairs)


def standard_error(row: dict[str, Any] | None) -> float | None:
    """A stored metric's standard error: ``stderr``, else its 95 % interval half-width / 1.96."""
    if row is None:
        return None
    se = row.get("stderr")
    if se is not None and math.isfinite(se) and se > 0:
        return float(se)
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        return (float(hi) - float(lo)) / (2 * 1.959963984540054)
    return None


def z_test(difference: float, se_a: float | None, se_b: float | None) -> Significance:
    """Two-sided z-test of an unpaired difference; p None without both standard errors."""
    if se_a is None or se_b is None:
        return Significance("none", None)
    scale = math.hypot(se_a, se_b)
    p = 2.0 * (1.0 - NormalDist().cdf(abs(difference) / scale))
    return Significance("z-test on stored standard errors", p)


class RegressionRule(RuleBase):
    """``task``/``metric`` dropped by more than ``max_drop`` against ``baseline``, with ``p < alpha``."""

    kind: Literal["regression"]
    source: Literal["run"] = "run"
    task: str = Field(min_length=1, description="Task name (exact).")
    metric: str = Field(min_length=1, description="Metric name; metric,filter for an lm-eval filter.")
    baseline: str = Field(default="previous", description="previous, run:ID or label:NAME.")
    max_drop: float = Field(ge=0.0, description="Largest tolerated drop, in the metric's unit.")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Significance level of the paired test.")
    higher_is_better: bool | None = Field(default=None, description="None: from the stored metric, else True.")

    @field_validator("task", "metric", "baseline")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

    @field_validator("baseline")
    @classmethod
    def _baseline_spec(cls, v: str) -> str:
        if not _BASELINE.match(v):
            raise ValueError(f"baseline {v!r} is not understood; {BASELINE_HINT}")
        return v

    @field_validator("max_drop")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @property
    def baseline_ref(self) -> tuple[str, int | str | None]:
        """``("previous", None)``, ``("run", 42)`` or ``("label", "release-1")``."""
        m = _BASELINE.match(self.baseline)
        assert m is not None  # validated
        if m.group(2):
            return "run", int(m.group(2))
        if m.group(3):
            return "label", m.group(3)
        return "previous", None

    @property
    def condition(self) -> str:
        """The breach condition in words: ``smoke_mc/acc drops > 0.05 vs previous (p < 0.05)``."""
        return f"{self.task}/{self.metric} drops > {self.max_drop:g} vs {self.baseline} (p < {self.alpha:g})"

    def judge(
        self,
        *,
        current: float,
        baseline: float,
        baseline_run: int,
        higher_is_better: bool | None,
        significance: Significance,
    ) -> Evaluation:
        """Decide from the two values and the test's outcome (pure)."""
        hib = self.higher_is_better if self.higher_is_better is not None else higher_is_better
        hib = True if hib is None else hib
        drop = baseline - current if hib else current - baseline
        # "more than max_drop": 0.80 -> 0.75 is a drop of exactly 0.05, not 0.05000000000000004
        big = drop - self.max_drop > 1e-9 * max(1.0, abs(baseline), abs(current))
        p = significance.p
        significant = p is None or p < self.alpha
        subject = f"drop of {self.task}/{self.metric} vs run {baseline_run}"
        detail = f"{baseline:.4g} -> {current:.4g}, {significance.describe()}"
        if big and significant:
            verdict = f"{drop:.4g} > max_drop {self.max_drop:g} ({detail}, alpha {self.alpha:g})"
        elif big:
            verdict = f"{drop:.4g} > max_drop {self.max_drop:g} but not significant ({detail} >= alpha {self.alpha:g})"
        else:
            verdict = f"{drop:.4g} is within max_drop {self.max_drop:g} ({detail})"
        return Evaluation(
            rule=self.name,
            breached=big and significant,
            value=drop,
            subject=subject,
            comparator=">",
            threshold=self.max_drop,
            summary=f"{subject} = {verdict}",
        )
