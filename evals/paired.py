"""Paired tests: did run B score differently from run A *on the same items*?

When two runs answered the same prompts, every item gives a pair (score in A, score in B).
The items differ in difficulty far more than the runs differ from each other, so the
comparison must look at the per-item *differences*. Comparing two independent intervals,
or running an unpaired test (two-proportion z-test, Welch's t-test) on paired data, throws
the pairing away: it drowns a real regression in item-to-item spread and misses it. **An
unpaired test on paired data is a defect**; everything here is paired.

Which test:

* **0/1 scores** (``acc``, ``exact_match``, ``refused``, ``unsafe_output``):
  :func:`mcnemar_exact_p`. Only the *discordant* pairs carry evidence (right in A and wrong
  in B, or the reverse); under "no difference" each discordant pair goes either way with
  probability 1/2, so the p-value is an exact two-sided binomial test on them. Exact at any
  n, so it is right for the small ``--limit`` runs this tool is used with.
  :func:`mcnemar_midp` is the mid-p variant: less conservative (closer to the nominal
  level; Fagerland et al. 2013 recommend it), offered for callers that want it;
  ``gemmawatch compare`` uses the exact test.
* **Continuous scores** (ROUGE, token F1, a classifier's probability):
  :func:`paired_bootstrap`: resample *items* (both scores of an item stay together) to get
  a percentile interval of the mean difference, and a two-sided p-value from the
  bootstrap distribution centred on "no difference". With very few pairs the bootstrap
  has too little to resample (with one pair its p-value would be 1/(B+1)), so up to
  :data:`SMALL_N` pairs :func:`paired_test` uses the exact paired sign-flip test
  (:func:`sign_flip_p`) for the p-value instead.
* **Many metrics at once**: :func:`benjamini_hochberg`. Testing 30 metrics at 0.05 gives
  one or two "significant" changes by chance alone; BH-adjusted p-values control the
  expected share of false discoveries among the metrics called significant (valid for
  independent or positively dependent tests, which related metrics of one run are).

Everything is seeded: the same scores always give the same interval and p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from gemmawatch.evals.stats import Values, is_binary

__all__ = [
    "SMALL_N",
    "PairedResult",
    "benjamini_hochberg",
    "mcnemar_exact_p",
    "mcnemar_midp",
    "paired_bootstrap",
    "paired_test",
    "sign_flip_p",
]

#: Up to this many pairs, continuous scores are tested with the exact sign-flip test.
SMALL_N = 16
#: Seeded random sign patterns above :data:`SMALL_N` pairs (sign_flip_p only).
SIGN_FLIP_RESAMPLES = 20_000
#: Bootstrap resamples for the paired interval and p-value.
BOOTSTRAP_RESAMPLES = 10_000
_MAX_CELLS = 2_000_000

TestName = Literal["mcnemar", "paired_bootstrap", "sign_flip"]


def _binom_two_sided(k: int, n: int, *, mid: bool) -> float:
    from scipy.stats import binom  # type: ignore[import-untyped]  # scipy ships no stubs

    if n == 0:
        return 1.0
    small = min(k, n - k)
    tail = float(binom.cdf(small, n, 0.5))
    if mid:
        tail -= 0.5 * float(binom.pmf(small, n, 0.5))
    return min(1.0, 2.0 * tail)


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    ``a_only``: pairs that scored 1 in A and 0 in B; ``b_only``: the reverse. The test is
    a binomial test of ``a_only`` successes in ``a_only + b_only`` trials at 1/2: twice the
    smaller tail, capped at 1 (the same as ``scipy.stats.binomtest(...).pvalue``, as the
    distribution is symmetric). No discordant pairs gives 1.0. Examples: (0, 5) -> 0.0625,
    (1, 6) -> 0.125, (2, 10) -> 0.03857.
    """
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {a_only} and {b_only}")
    return _binom_two_sided(a_only, a_only + b_only, mid=False)


def mcnemar_midp(a_only: int, b_only: int) -> float:
    """Two-sided mid-p McNemar: the exact p-value less the probability of the observed count.

    ``2 * (P(X <= k) - P(X = k) / 2)`` with ``k = min(a_only, b_only)``, capped at 1. Its
    size is closer to the nominal level than the exact test's, which is conservative (it
    rejects less often than alpha). Example: (0, 5) -> 0.03125, (1, 6) -> 0.0703.
    """
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {a_only} and {b_only}")
    return _binom_two_sided(a_only, a_only + b_only, mid=True)


def _diffs(base: Values, cand: Values) -> npt.NDArray[np.float64]:
    a = np.asarray(base if isinstance(base, np.ndarray) else list(base), dtype=np.float64).reshape(-1)
    b = np.asarray(cand if isinstance(cand, np.ndarray) else list(cand), dtype=np.float64).reshape(-1)
    if a.size != b.size:
        raise ValueError(f"paired tests need aligned scores, got {a.size} and {b.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired scores must not be NaN: drop the pair instead")
    return b - a


def sign_flip_p(base: Values, cand: Values, *, seed: int = 0) -> float:
    """Two-sided paired permutation (sign-flip) test of the mean difference ``cand - base``.

    Under "no difference" each pair's difference is as likely positive as negative, so the
    p-value is the share of sign patterns whose |mean| is at least the observed one (the
    observed pattern counts). All ``2**n`` patterns up to :data:`SMALL_N` pairs (exact),
    else :data:`SIGN_FLIP_RESAMPLES` seeded random patterns. Example: 5 pairs, all
    differences positive -> 2/32 = 0.0625. No pairs or all differences zero -> 1.0.
    """
    d = _diffs(base, cand)
    n = int(d.size)
    if n == 0 or not np.any(d):
        return 1.0
    observed = abs(float(d.mean()))
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= SMALL_N:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1 - 2 * ((codes >> np.arange(n)) & 1)
        means = np.abs((signs * d).mean(axis=1))
        return float(np.mean(means >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, _MAX_CELLS // n)
    done = 0
    while done < SIGN_FLIP_RESAMPLES:
        size = min(chunk, SIGN_FLIP_RESAMPLES - done)
        signs_r = rng.choice(np.array([-1.0, 1.0]), size=(size, n))
        hits += int(np.sum(np.abs((signs_r * d).mean(axis=1)) >= observed - tol))
        done += size
    return (hits + 1) / (SIGN_FLIP_RESAMPLES + 1)


def paired_bootstrap(
    base: Values,
    cand: Values,
    *,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, tuple[float, float], float]:
    """``(mean difference, (lo, hi), p)`` of ``cand - base`` by resampling items jointly.

    The interval is the percentile interval of the resampled mean differences. The p-value
    is two-sided against "no difference": the bootstrap distribution is shifted to mean 0
    and ``p = (1 + #{|mean* - mean| >= |mean|}) / (n_resamples + 1)`` (Efron & Tibshirani,
    ch. 16). All differences zero gives ``(0, (0, 0), 1.0)``; no pairs gives NaNs and 1.0.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    d = _diffs(base, cand)
    n = int(d.size)
    if n == 0:
        return math.nan, (math.nan, math.nan), 1.0
    mean = float(d.mean())
    if not np.any(d):
        return 0.0, (0.0, 0.0), 1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    parts: list[npt.NDArray[np.float64]] = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        parts.append(d[rng.integers(0, n, size=(size, n))].mean(axis=1))
        done += size
    means = np.concatenate(parts)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    tol = 1e-12 * max(1.0, abs(mean))
    extreme = int(np.sum(np.abs(means - mean) >= abs(mean) - tol))
    return mean, (float(lo), float(hi)), (extreme + 1) / (n_resamples + 1)


@dataclass(frozen=True)
class PairedResult:
    """One paired comparison of ``n`` items: means, difference, interval and test.

    Attributes:
        test: ``mcnemar`` (0/1 scores), ``paired_bootstrap`` or, for at most
            :data:`SMALL_N` pairs of continuous scores, ``sign_flip``.
        n: Pairs compared.
        base_mean, cand_mean: Mean score of each side over the pairs.
        delta: ``cand_mean - base_mean``.
        ci: Paired-bootstrap interval of ``delta``.
        p_value: Two-sided p-value of "no difference".
        base_only, cand_only: For 0/1 scores, pairs that are 1 only in base / only in
            candidate (McNemar's discordant pairs); None otherwise.
    """

    test: TestName
    n: int
    base_mean: float
    cand_mean: float
    delta: float
    ci: tuple[float, float]
    p_value: float
    base_only: int | None = None
    cand_only: int | None = None


def paired_test(
    base: Sequence[float], cand: Sequence[float], *, confidence: float = 0.95, seed: int = 0
) -> PairedResult:
    """Compare aligned per-item scores: exact McNemar for 0/1 scores, else bootstrap (sign-flip when few).

    ``base[i]`` and ``cand[i]`` must be the two runs' scores of the same item.
    """
    d = _diffs(base, cand)
    n = int(d.size)
    if n == 0:
        raise ValueError("paired_test needs at least one pair")
    a = np.asarray(list(base), dtype=np.float64)
    b = np.asarray(list(cand), dtype=np.float64)
    base_mean, cand_mean = float(a.mean()), float(b.mean())
    if is_binary(np.concatenate([a, b])):
        base_only = int(np.sum(d < 0))
        cand_only = int(np.sum(d > 0))
        return PairedResult(
            "mcnemar",
            n=n,
            base_mean=base_mean,
            cand_mean=cand_mean,
            delta=float(d.mean()),
            ci=_discordant_bootstrap_ci(n, base_only, cand_only, confidence=confidence, seed=seed),
            p_value=mcnemar_exact_p(base_only, cand_only),
            base_only=base_only,
            cand_only=cand_only,
        )
    delta, ci, p_boot = paired_bootstrap(a, b, confidence=confidence, seed=seed)
    if n <= SMALL_N:
        return PairedResult("sign_flip", n, base_mean, cand_mean, delta, ci, sign_flip_p(a, b, seed=seed))
    return PairedResult("paired_bootstrap", n, base_mean, cand_mean, delta, ci, p_boot)


def _discordant_bootstrap_ci(
    n: int, base_only: int, cand_only: int, *, confidence: float, seed: int, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """The paired bootstrap interval of a 0/1 difference without building the resample matrix.

    Each item's difference is -1, 0 or +1, so resampling ``n`` items is one multinomial draw
    of the three counts: the same distribution as :func:`paired_bootstrap`, at O(resamples).
    """
    if base_only == cand_only == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [base_only / n, cand_only / n, (n - base_only - cand_only) / n], size=n_resamples)
    means = (counts[:, 1] - counts[:, 0]) / n
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (as R's ``p.adjust(p, "BH")``), None kept in place.

    With the ``m`` p-values sorted ascending, the adjusted value of the i-th is
    ``min over j >= i of p_(j) * m / j``, capped at 1; a metric is significant at false
    discovery rate ``q`` when its adjusted p-value is below ``q``. ``None`` entries (metrics
    without a test) are not counted in ``m``. Example: (0.01, 0.04, 0.03, 0.2) ->
    (0.04, 0.0533, 0.0533, 0.2).
    """
    indexed = [(i, float(p)) for i, p in enumerate(p_values) if p is not None]
    for _, p in indexed:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"p-values must be in [0, 1], got {p}")
    out: list[float | None] = [None] * len(p_values)
    m = len(indexed)
    running = 1.0
    for rank, (i, p) in sorted(enumerate(sorted(indexed, key=lambda t: t[1]), start=1), key=lambda t: -t[0]):
        running = min(running, p * m / rank)
        out[i] = running
    return out
