"""Confidence intervals and percentiles for per-sample scores and timings.

Every aggregate gemmawatch stores carries ``n`` and a confidence interval computed
from the per-sample values, so a dashboard never shows a bare number:

* 0/1 scores (``acc``, ``exact_match``, success flags) get the **Wilson score
  interval**. Unlike the normal ("Wald") interval it stays inside [0, 1] and is
  not degenerate at 0/n or n/n, which matters for the tiny ``--limit`` runs this
  tool is used with.
* Anything else gets a **percentile bootstrap**, vectorised with numpy and seeded,
  so the same values always give the same interval.

Empty input gives ``(nan, nan)``: there is no interval to report, and NaN cannot
be mistaken for a real bound the way ``(0.0, 1.0)`` could.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "bootstrap_cluster_stat_ci",
    "bootstrap_mean_ci",
    "bootstrap_stat_ci",
    "bootstrap_summary_ci",
    "ci_for_values",
    "is_binary",
    "percentile",
    "percentile_stat",
    "stratified_bootstrap_mean_ci",
    "wilson_interval",
]

#: Per-sample values: any iterable of numbers (None/NaN allowed where documented) or a numpy array.
Values = Iterable[float | None] | npt.NDArray[Any]

#: A statistic over resamples: called as ``stat(array_2d, axis=1)`` and returning
#: one value per row, like ``np.mean``, ``np.max`` or ``percentile_stat(95)``.
StatFn = Callable[..., Any]

NAN_INTERVAL = (math.nan, math.nan)

#: Upper bound on resample-matrix cells held in memory at once (~16 MB of int64
#: indices); larger problems are bootstrapped in chunks of resamples.
_MAX_CELLS = 2_000_000


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Returns ``(nan, nan)`` when ``n == 0``. Raises ``ValueError`` when
    ``successes`` is outside ``[0, n]``. Example: 8 of 10 at 95 % is
    about ``(0.490, 0.943)``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return NAN_INTERVAL
    z = _z(confidence)
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = (z / (1.0 + z2n)) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # Clamp float noise at the edges (e.g. 1.0000000000000002 for n/n).
    return max(0.0, center - half), min(1.0, center + half)


def _as_array(values: Values) -> npt.NDArray[np.float64]:
    # list() first: numpy cannot build a float array from a generator.
    raw = values if isinstance(values, np.ndarray) else list(values)
    return np.asarray(raw, dtype=np.float64).reshape(-1)


def bootstrap_stat_ci(
    values: Values,
    stat: StatFn,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval for any statistic of ``values``.

    ``stat`` is applied to a ``(resamples, n)`` matrix as ``stat(m, axis=1)``.
    One value gives ``(stat, stat)``; none gives ``(nan, nan)``. Bootstrap
    intervals of extreme statistics (max, p95 of few values) are narrow and
    biased low: the resamples can never exceed the largest observation.
    """
    arr = _as_array(values)
    n = arr.size
    if n == 0:
        return NAN_INTERVAL
    if n == 1:
        only = float(stat(arr.reshape(1, 1), axis=1)[0])
        return only, only
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    alpha = 1.0 - confidence
    _z(confidence)  # validates confidence
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    stats: list[npt.NDArray[np.float64]] = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        stats.append(np.asarray(stat(arr[idx], axis=1), dtype=np.float64))
        done += size
    lo, hi = np.quantile(np.concatenate(stats), [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def bootstrap_summary_ci(
    values: Values,
    percentiles: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the mean (key ``mean``) and of each percentile (``p50``, ``p99``...) at once.

    Exactly the intervals :func:`bootstrap_stat_ci` gives for each statistic with the
    same seed (the same resamples are drawn), but every resample is partitioned once
    for all percentiles instead of once per statistic: a summary of 10k timings costs
    one bootstrap instead of five.
    """
    arr = _as_array(values)
    keys = ["mean", *(f"p{q:g}" for q in percentiles)]
    n = arr.size
    if n == 0:
        return dict.fromkeys(keys, NAN_INTERVAL)
    if n == 1:
        only = float(arr[0])
        return dict.fromkeys(keys, (only, only))
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    alpha = 1.0 - confidence
    _z(confidence)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    rows: list[npt.NDArray[np.float64]] = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        m = arr[rng.integers(0, n, size=(size, n))]
        block = np.empty((size, len(keys)))
        block[:, 0] = np.mean(m, axis=1)
        if len(keys) > 1:
            block[:, 1:] = np.percentile(m, list(percentiles), axis=1).T
        rows.append(block)
        done += size
    bounds = np.quantile(np.concatenate(rows), [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return {key: (float(bounds[0, i]), float(bounds[1, i])) for i, key in enumerate(keys)}


def bootstrap_cluster_stat_ci(
    clusters: Sequence[Sequence[float]],
    stat: StatFn,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap resampling whole clusters, for values that are not independent.

    Inter-token latencies of one request move together (same prompt length, same
    machine state), so we resample *requests* and pool their gaps; treating every
    gap as independent would give a falsely narrow interval. ``stat`` is called as
    ``stat(array_1d, axis=0)``.
    """
    arrays = [np.asarray(c, dtype=np.float64).reshape(-1) for c in clusters]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return NAN_INTERVAL
    if len(arrays) == 1:
        # One cluster: nothing to resample between; fall back to the values themselves.
        return bootstrap_stat_ci(arrays[0], stat, confidence=confidence, n_resamples=n_resamples, seed=seed)
    _z(confidence)
    alpha = 1.0 - confidence
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), size=(n_resamples, len(arrays)))
    # Ragged clusters cannot be one matrix; the loop is fine at the sizes of a latency probe.
    stats = np.array([float(stat(np.concatenate([arrays[i] for i in row]), axis=0)) for row in picks])
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def stratified_bootstrap_mean_ci(
    strata: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval for the *unweighted* mean of per-stratum means.

    This is the statistic of an lm-eval group with ``weight_by_size: false``
    (every subtask counts once); each stratum is resampled on its own.
    """
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in strata]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return NAN_INTERVAL
    _z(confidence)
    alpha = 1.0 - confidence
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for arr in arrays:
        idx = rng.integers(0, arr.size, size=(n_resamples, arr.size))
        means += arr[idx].mean(axis=1)
    means /= len(arrays)
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def bootstrap_mean_ci(
    values: Values,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval for the mean of ``values`` (seeded, vectorised)."""
    return bootstrap_stat_ci(values, np.mean, confidence=confidence, n_resamples=n_resamples, seed=seed)


def is_binary(values: Values) -> bool:
    """True when every value is exactly 0 or 1 (bools included) and there is at least one."""
    arr = _as_array(values)
    return bool(arr.size) and bool(np.all((arr == 0.0) | (arr == 1.0)))


def ci_for_values(
    values: Values, *, confidence: float = 0.95
) -> tuple[float, float, int]:
    """``(lo, hi, n)`` for the mean of per-sample values.

    Wilson when all values are 0/1 (accuracy-like), else bootstrap of the mean.
    NaN values are dropped first (they carry no evidence), and ``n`` counts what
    is left.
    """
    arr = _as_array(values)
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return math.nan, math.nan, 0
    if is_binary(arr):
        lo, hi = wilson_interval(float(arr.sum()), n, confidence)
    else:
        lo, hi = bootstrap_mean_ci(arr, confidence=confidence)
    return lo, hi, n


def percentile(values: Values, q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation as ``numpy.percentile``).

    Linear interpolation is what vLLM's ``benchmark_serving`` reports, so our
    p50/p95 are comparable with its numbers. Empty input gives ``nan``.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    arr = _as_array(values)
    if arr.size == 0:
        return math.nan
    return float(np.percentile(arr, q))


def percentile_stat(q: float) -> StatFn:
    """A :data:`StatFn` computing the ``q``-th percentile along an axis (for bootstrap_stat_ci)."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return partial(np.percentile, q=q)
