"""Paired tests and multiple-testing correction (gemmawatch.evals.paired): known answers and properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps  # type: ignore[import-untyped]

from gemmawatch.evals.paired import (
    SMALL_N,
    benjamini_hochberg,
    mcnemar_exact_p,
    mcnemar_midp,
    paired_bootstrap,
    paired_test,
    sign_flip_p,
)
from gemmawatch.evals.parity import mcnemar_exact_p as parity_mcnemar

# ---------------------------------------------------------------- McNemar


def _exact_by_hand(b: int, c: int) -> float:
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("base_only", "cand_only", "expected"),
    [(0, 5, 0.0625), (1, 6, 0.125), (6, 1, 0.125), (3, 3, 1.0), (0, 0, 1.0), (2, 10, 0.0385742), (0, 1, 1.0)],
)
def test_mcnemar_exact_known_values(base_only: int, cand_only: int, expected: float) -> None:
    p = mcnemar_exact_p(base_only, cand_only)
    assert p == pytest.approx(expected, abs=1e-6)
    if base_only + cand_only:
        assert p == pytest.approx(_exact_by_hand(base_only, cand_only), rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(40, 60), (7, 23), (100, 100), (0, 30), (250, 199)])
def test_mcnemar_exact_matches_scipy_binomtest(b: int, c: int) -> None:
    assert mcnemar_exact_p(b, c) == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_parity_keeps_using_the_same_mcnemar() -> None:
    assert parity_mcnemar is mcnemar_exact_p


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    # 2 * (P(X <= k) - P(X = k) / 2), by hand: (0,5): 1/32; (1,6): 2*(8 - 3.5)/128; (3,3) symmetric: 1.
    [(0, 5, 1 / 32), (1, 6, 9 / 128), (3, 3, 1.0), (0, 0, 1.0)],
)
def test_mcnemar_midp_known_values(b: int, c: int, expected: float) -> None:
    assert mcnemar_midp(b, c) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_midp(b, c) <= mcnemar_exact_p(b, c)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact_p(-1, 3)


# ---------------------------------------------------------------- sign-flip


def _sign_flip_by_hand(d: list[float]) -> float:
    observed = abs(sum(d))
    sums = [
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in itertools.product((1, -1), repeat=len(d))
    ]
    return sum(1 for v in sums if v >= observed - 1e-12) / len(sums)


def test_sign_flip_exact_known_values() -> None:
    assert sign_flip_p([0] * 5, [1, 2, 3, 4, 5]) == pytest.approx(2 / 32)  # only all+ and all- are as extreme
    assert sign_flip_p([0] * 4, [1, 2, 3, 4]) == pytest.approx(2 / 16)
    assert sign_flip_p([1, 2, 3], [1, 2, 3]) == 1.0
    d = [3.0, 1.0, 1.0, -1.0, 0.5, -2.0, 2.5]
    assert sign_flip_p([0.0] * len(d), d) == pytest.approx(_sign_flip_by_hand(d))


def test_sign_flip_random_above_small_n_is_close_to_exact_order() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=40)
    cand = base + 0.5 + rng.normal(scale=1.0, size=40)
    p = sign_flip_p(base, cand)
    t = sps.ttest_rel(cand, base).pvalue
    assert 0 < p < 0.05 and t / 4 < p < t * 4


# ---------------------------------------------------------------- paired bootstrap


def test_paired_bootstrap_interval_matches_scipy_percentile_bootstrap() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, size=60)
    cand = np.clip(base - 0.05 + rng.normal(scale=0.1, size=60), 0, 1)
    delta, (lo, hi), _ = paired_bootstrap(base, cand)
    ref = sps.bootstrap(
        (cand - base,), np.mean, method="percentile", n_resamples=10_000, random_state=np.random.default_rng(1)
    )
    assert delta == pytest.approx(float(np.mean(cand - base)))
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.006)


def test_paired_bootstrap_p_value_agrees_with_paired_t_test_in_order() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(size=80)
    cand = base - 0.2 + rng.normal(scale=0.9, size=80)
    _, (lo, hi), p = paired_bootstrap(base, cand)
    t = sps.ttest_rel(cand, base).pvalue
    assert 0.001 < t < 0.05
    assert t / 2 < p < t * 2
    assert hi < 0  # the interval excludes 0 when p is small


def test_paired_bootstrap_no_shift_is_not_significant_and_edges() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(size=100)
    cand = base + rng.normal(scale=0.3, size=100) * rng.choice([-1, 1], size=100)
    _, (lo, hi), p = paired_bootstrap(base, cand)
    assert lo < 0 < hi or p > 0.05
    assert paired_bootstrap([1, 2], [1, 2]) == (0.0, (0.0, 0.0), 1.0)
    delta, ci, p_empty = paired_bootstrap([], [])
    assert math.isnan(delta) and math.isnan(ci[0]) and p_empty == 1.0
    # A constant shift is as significant as the resolution allows.
    assert paired_bootstrap([0.1] * 30, [0.3] * 30)[2] == pytest.approx(1 / 10_001)
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap([1, math.nan], [1, 2])


def test_paired_bootstrap_is_deterministic() -> None:
    base, cand = [0.1, 0.5, 0.9, 0.3] * 10, [0.2, 0.4, 0.7, 0.35] * 10
    assert paired_bootstrap(base, cand) == paired_bootstrap(base, cand)


# ---------------------------------------------------------------- dispatch and pairing


def test_paired_test_uses_mcnemar_for_binary_scores() -> None:
    base = [1] * 30 + [0] * 10
    cand = [1] * 20 + [0] * 20  # 10 items flip 1 -> 0, none the other way
    r = paired_test(base, cand)
    assert (r.test, r.n, r.base_only, r.cand_only) == ("mcnemar", 40, 10, 0)
    assert (r.base_mean, r.cand_mean, r.delta) == (0.75, 0.5, -0.25)
    assert r.p_value == pytest.approx(2 / 2**10)
    lo, hi = r.ci
    assert -0.45 < lo < -0.25 < hi < -0.05
    # The multinomial shortcut gives the item bootstrap's interval.
    _, (b_lo, b_hi), _ = paired_bootstrap(base, cand)
    assert lo == pytest.approx(b_lo, abs=0.026) and hi == pytest.approx(b_hi, abs=0.026)


def test_paired_test_continuous_small_and_large_n() -> None:
    small = paired_test([0.1, 0.2, 0.3], [0.2, 0.3, 0.5])
    assert small.test == "sign_flip" and small.p_value == pytest.approx(2 / 8)
    assert SMALL_N == 16
    rng = np.random.default_rng(5)
    base = rng.uniform(size=SMALL_N + 1)
    large = paired_test(base, base + 0.01)
    assert large.test == "paired_bootstrap" and large.p_value < 0.001
    with pytest.raises(ValueError, match="at least one pair"):
        paired_test([], [])


def test_unpaired_test_on_paired_data_misses_what_the_paired_test_finds() -> None:
    # Items differ a lot in difficulty; the candidate is a little worse on almost every item.
    rng = np.random.default_rng(2)
    difficulty = rng.uniform(0.0, 1.0, size=50)
    base = difficulty
    cand = difficulty - 0.03 + rng.normal(scale=0.01, size=50)
    assert sps.ttest_ind(base, cand, equal_var=False).pvalue > 0.5  # the defect: the pairing is thrown away
    assert paired_test(base, cand).p_value < 0.001


# ---------------------------------------------------------------- Benjamini–Hochberg


def test_bh_known_values() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)
    assert benjamini_hochberg([0.5]) == [0.5]
    assert benjamini_hochberg([]) == []


def test_bh_example_of_the_original_paper_rejects_four_of_fifteen() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 -> the four smallest are discoveries.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.000]  # fmt: skip
    adj = benjamini_hochberg(p)
    assert [a < 0.05 for a in adj] == [True] * 4 + [False] * 11  # type: ignore[operator]
    assert adj[3] == pytest.approx(0.0095 * 15 / 4)
    assert adj[4] == pytest.approx(0.0201 * 15 / 5)  # min over j >= 5 of p_j * 15 / j


def test_bh_keeps_untested_entries_and_order_and_caps_at_one() -> None:
    adj = benjamini_hochberg([0.9, None, 0.01, None, 0.8])
    assert adj[1] is None and adj[3] is None
    assert adj[2] == pytest.approx(0.03) and adj[0] == pytest.approx(0.9) and adj[4] == pytest.approx(0.9)
    assert benjamini_hochberg([0.6, 0.7]) == pytest.approx([0.7, 0.7])
    assert all(a is not None and a <= 1.0 for a in benjamini_hochberg([1.0, 0.99, 0.98]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([1.5])


def test_bh_adjusted_is_never_below_raw_and_is_monotone_in_raw() -> None:
    rng = np.random.default_rng(9)
    raw = list(rng.uniform(size=30) ** 3)
    adj = benjamini_hochberg(raw)
    assert all(a is not None and a >= r for a, r in zip(adj, raw, strict=True))
    order = np.argsort(raw)
    ordered = [adj[i] for i in order]
    assert ordered == sorted(ordered)  # type: ignore[type-var]
