"""Known answers and sanity properties of gemmawatch.evals.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gemmawatch.evals.stats import (
    bootstrap_mean_ci,
    bootstrap_stat_ci,
    ci_for_values,
    is_binary,
    percentile,
    percentile_stat,
    wilson_interval,
)


def test_wilson_known_answer_8_of_10() -> None:
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=5e-4)
    assert hi == pytest.approx(0.9433, abs=5e-4)


@pytest.mark.parametrize(
    ("k", "n", "conf"), [(0, 5, 0.95), (5, 5, 0.95), (3, 7, 0.9), (41, 100, 0.99), (1, 1, 0.95)]
)
def test_wilson_matches_scipy(k: int, n: int, conf: float) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    ref = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    lo, hi = wilson_interval(k, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_edges_stay_in_unit_interval_and_empty_is_nan() -> None:
    lo, hi = wilson_interval(0, 3)
    assert lo == 0.0 and 0.0 < hi < 1.0
    lo, hi = wilson_interval(3, 3)
    assert 0.0 < lo < 1.0 and hi == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(4, 3)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 3, confidence=1.5)


def test_bootstrap_mean_ci_is_seeded_and_brackets_the_mean() -> None:
    values = [0.2, 0.5, 0.9, 0.4, 0.7, 0.1, 0.3]
    a = bootstrap_mean_ci(values)
    b = bootstrap_mean_ci(values)
    assert a == b  # same seed, same interval
    assert a[0] < float(np.mean(values)) < a[1]
    assert min(values) <= a[0] and a[1] <= max(values)
    assert bootstrap_mean_ci(values, seed=1) != a


def test_bootstrap_single_and_empty() -> None:
    assert bootstrap_mean_ci([0.37]) == (0.37, 0.37)
    assert all(math.isnan(x) for x in bootstrap_mean_ci([]))


def test_bootstrap_coverage_is_near_nominal() -> None:
    """Across many normal samples, the 90% bootstrap interval covers the true mean ~90% of the time."""
    rng = np.random.default_rng(123)
    trials, n, true_mean = 300, 40, 2.0
    covered = 0
    for i in range(trials):
        sample = rng.normal(true_mean, 1.0, size=n)
        lo, hi = bootstrap_mean_ci(sample, confidence=0.9, n_resamples=1000, seed=i)
        covered += lo <= true_mean <= hi
    # Percentile bootstrap under-covers slightly at n=40; binomial noise at 300 trials ~ +-0.05.
    assert 0.80 <= covered / trials <= 0.97


def test_bootstrap_width_shrinks_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(size=20)
    large = rng.normal(size=2000)
    w_small = np.subtract(*bootstrap_mean_ci(small)[::-1])
    w_large = np.subtract(*bootstrap_mean_ci(large)[::-1])
    # Width scales like 1/sqrt(n): 100x less data -> ~10x wider.
    assert w_small > 5 * w_large


def test_bootstrap_chunks_large_inputs_consistently() -> None:
    """Big inputs are resampled in chunks; the interval is still sane and deterministic."""
    values = np.arange(5000, dtype=float) % 7
    lo, hi = bootstrap_mean_ci(values, n_resamples=500)
    assert lo < values.mean() < hi
    assert (lo, hi) == bootstrap_mean_ci(values, n_resamples=500)


def test_bootstrap_stat_ci_for_percentiles_and_max() -> None:
    values = list(range(1, 101))
    lo, hi = bootstrap_stat_ci(values, percentile_stat(50))
    assert lo < 50.5 < hi
    lo, hi = bootstrap_stat_ci(values, np.max)
    assert hi == 100.0 and lo >= 90.0  # resampled max never exceeds the observed max
    assert bootstrap_stat_ci([3.0], np.max) == (3.0, 3.0)


def test_ci_for_values_picks_wilson_for_binary_and_bootstrap_otherwise() -> None:
    binary = [1, 0, 1, 1, 1, 1, 0, 1, 1, 1]
    assert ci_for_values(binary) == (*wilson_interval(8, 10), 10)
    assert ci_for_values([True, False]) == (*wilson_interval(1, 2), 2)
    graded = [0.5, 0.25, 1.0, 0.0]
    assert ci_for_values(graded) == (*bootstrap_mean_ci(graded), 4)
    lo, hi, n = ci_for_values([1.0, float("nan"), 0.0])
    assert n == 2 and (lo, hi) == wilson_interval(1, 2)
    lo, hi, n = ci_for_values([])
    assert n == 0 and math.isnan(lo) and math.isnan(hi)


def test_is_binary() -> None:
    assert is_binary([0, 1, 1.0, False])
    assert not is_binary([0, 0.5])
    assert not is_binary([])


def test_percentile_matches_numpy_linear_interpolation() -> None:
    values = [0.3, 0.1, 0.4, 0.2]
    assert percentile(values, 50) == pytest.approx(0.25)
    assert percentile(values, 95) == pytest.approx(0.385)
    assert percentile(values, 100) == 0.4
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 101)


def test_summary_bootstrap_matches_one_statistic_at_a_time():
    import numpy as np

    from gemmawatch.evals import stats

    values = np.random.default_rng(3).lognormal(size=300)
    together = stats.bootstrap_summary_ci(values, [50.0, 99.0], n_resamples=500, seed=4)
    assert together["mean"] == stats.bootstrap_stat_ci(values, np.mean, n_resamples=500, seed=4)
    for q in (50.0, 99.0):
        assert together[f"p{q:g}"] == stats.bootstrap_stat_ci(values, stats.percentile_stat(q), n_resamples=500, seed=4)
    assert stats.bootstrap_summary_ci([2.0], [50.0]) == {"mean": (2.0, 2.0), "p50": (2.0, 2.0)}
    empty = stats.bootstrap_summary_ci([], [50.0])
    assert all(np.isnan(lo) and np.isnan(hi) for lo, hi in empty.values())
