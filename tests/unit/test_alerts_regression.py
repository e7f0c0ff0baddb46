"""Regression rules: paired tests and decisions on hand-built scores (no database)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from scipy.stats import binomtest  # type: ignore[import-untyped]

from gemmawatch.alerts import RegressionRule
from gemmawatch.alerts.regression import (
    Significance,
    mcnemar_test,
    paired_test,
    sign_flip_test,
    standard_error,
    z_test,
)


def rule(**kw: object) -> RegressionRule:
    base: dict[str, object] = {
        "name": "reg",
        "kind": "regression",
        "task": "smoke_mc",
        "metric": "acc",
        "max_drop": 0.05,
    }
    return RegressionRule.model_validate({**base, **kw})


def test_mcnemar_counts_discordant_pairs_exactly() -> None:
    # 8 items right in the baseline and wrong now, none the other way, 12 unchanged.
    pairs = [(1.0, 0.0)] * 8 + [(1.0, 1.0)] * 6 + [(0.0, 0.0)] * 6
    sig = mcnemar_test(pairs)
    assert sig.test == "McNemar exact" and sig.n == 20
    assert sig.p == pytest.approx(2 * 0.5**8) == pytest.approx(binomtest(8, 8, 0.5).pvalue)
    # 3 vs 1 discordant: far from significant
    assert mcnemar_test([(1.0, 0.0)] * 3 + [(0.0, 1.0)]).p == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert mcnemar_test([(1.0, 1.0)] * 5).p == 1.0


def test_paired_test_picks_mcnemar_for_binary_scores_and_sign_flip_otherwise() -> None:
    assert paired_test([(1.0, 0.0), (0.0, 0.0)]).test == "McNemar exact"
    assert paired_test([(0.9, 0.5), (0.7, 0.6)]).test.startswith("paired sign-flip")


def test_sign_flip_exact_for_small_n() -> None:
    # Six pairs, every one worse: only the all-minus and all-plus patterns are as extreme.
    sig = sign_flip_test([(1.0, 0.5 - i / 100) for i in range(6)])
    assert sig.test == "paired sign-flip (exact)" and sig.n == 6
    assert sig.p == pytest.approx(2 / 64)
    assert sign_flip_test([(0.8, 0.8)] * 5).p == 1.0  # no difference at all
    assert sign_flip_test([(0.8, 0.6), (0.6, 0.8)]).p == 1.0  # symmetric differences


def test_sign_flip_sampled_for_large_n_is_seeded() -> None:
    worse = [(0.9, 0.7 + (i % 5) / 100) for i in range(40)]
    a, b = sign_flip_test(worse), sign_flip_test(worse)
    assert a == b and a.test == "paired sign-flip" and a.p is not None and a.p < 0.001
    noise = [(0.5, 0.5 + (0.01 if i % 2 else -0.01)) for i in range(40)]
    noisy = sign_flip_test(noise)
    assert noisy.p is not None and noisy.p > 0.5


def test_z_test_and_standard_errors() -> None:
    assert standard_error({"stderr": 0.02}) == 0.02
    assert standard_error({"stderr": None, "ci_low": 0.5, "ci_high": 0.5 + 2 * 1.959963984540054 * 0.03}) == (
        pytest.approx(0.03)
    )
    assert standard_error({"stderr": None, "ci_low": None, "ci_high": None}) is None
    assert standard_error(None) is None
    sig = z_test(-0.1, 0.03, 0.04)  # z = 2
    assert sig.p == pytest.approx(0.0455, abs=1e-3) and sig.n == 0
    assert z_test(-0.1, None, 0.04).p is None


def judge(r: RegressionRule, current: float, baseline: float, p: float | None, *, hib: bool | None = True) -> object:
    sig = Significance("McNemar exact", p, 80) if p is not None else Significance("none", None)
    return r.judge(current=current, baseline=baseline, baseline_run=7, higher_is_better=hib, significance=sig)


def test_breach_needs_a_big_and_significant_drop() -> None:
    r = rule()
    fired = judge(r, 0.60, 0.80, 0.001)
    assert fired.breached and fired.value == pytest.approx(0.2)  # type: ignore[attr-defined]
    msg = fired.message(12)  # type: ignore[attr-defined]
    assert "\n" not in msg and "vs run 7" in msg and "McNemar exact p=0.001" in msg and "(run 12)" in msg
    assert not judge(r, 0.60, 0.80, 0.2).breached  # type: ignore[attr-defined]
    assert "not significant" in judge(r, 0.60, 0.80, 0.2).message()  # type: ignore[attr-defined]
    assert not judge(r, 0.78, 0.80, 0.001).breached  # type: ignore[attr-defined]  # drop 0.02 <= 0.05
    assert not judge(r, 0.75, 0.80, 0.001).breached  # type: ignore[attr-defined]  # exactly max_drop: not more
    assert not judge(r, 0.95, 0.80, 0.001).breached  # type: ignore[attr-defined]  # an improvement


def test_alpha_is_the_rule_s() -> None:
    assert judge(rule(), 0.6, 0.8, 0.03).breached  # type: ignore[attr-defined]  # 0.03 < 0.05
    assert not judge(rule(alpha=0.01), 0.6, 0.8, 0.03).breached  # type: ignore[attr-defined]


def test_lower_is_better_turns_the_drop_around() -> None:
    slower = judge(rule(metric="e2e_s_p95"), 2.0, 1.0, 0.001, hib=False)
    assert slower.breached and slower.value == pytest.approx(1.0)  # type: ignore[attr-defined]
    # The rule's own direction wins over the stored one; None everywhere means higher is better.
    forced = judge(rule(higher_is_better=True), 2.0, 1.0, 0.001, hib=False)
    assert not forced.breached  # type: ignore[attr-defined]
    assert judge(rule(), 0.5, 0.9, 0.001, hib=None).breached  # type: ignore[attr-defined]


def test_without_any_uncertainty_the_drop_decides_and_says_so() -> None:
    ev = judge(rule(), 0.6, 0.8, None)
    assert ev.breached and "judged on the drop alone" in ev.message()  # type: ignore[attr-defined]
    unpaired = rule().judge(
        current=0.6, baseline=0.8, baseline_run=3, higher_is_better=True,
        significance=Significance("z-test on stored standard errors", 0.01),
    )  # fmt: skip
    assert "no per-sample scores: z-test on stored standard errors p=0.01 (unpaired)" in unpaired.message()


def test_baseline_specs() -> None:
    assert rule().baseline_ref == ("previous", None)
    assert rule(baseline="run:42").baseline_ref == ("run", 42)
    assert rule(baseline="label:release-1").baseline_ref == ("label", "release-1")
    assert rule(baseline="run:42").condition == "smoke_mc/acc drops > 0.05 vs run:42 (p < 0.05)"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"baseline": "yesterday"}, "baseline"),
        ({"baseline": "run:x"}, "baseline"),
        ({"max_drop": -0.1}, "max_drop"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"source": "telemetry"}, "source"),
        ({"comparator": ">"}, "comparator"),
    ],
)
def test_invalid_regression_rules(bad: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        rule(**bad)
