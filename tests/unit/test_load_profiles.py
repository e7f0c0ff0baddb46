"""Load profiles: validation messages, arrival schedules, sweep steps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gemmawatch.collectors.load.profiles import arrival_offsets, make_profile, rate_step, sweep_head
from gemmawatch.errors import ConfigError


def take(it, n):
    return list(itertools.islice(it, n))


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("bursty", {}, "Unknown profile 'bursty'. Available: synchronous, concurrent"),
        ("concurrent", {}, "needs --concurrency"),
        ("concurrent", {"concurrency": 0}, "needs --concurrency"),
        ("constant", {}, "needs --rate"),
        ("poisson", {"rate": -1.0}, "needs --rate"),
        ("poisson", {"rate": 1.0, "burstiness": 0.0}, "--burstiness must be > 0"),
        ("sweep", {"steps": 1}, "needs --steps K (K >= 2"),
        ("synchronous", {"max_inflight": 0}, "--max-inflight must be >= 1"),
    ],
)
def test_invalid_profiles_name_the_fix(kind, kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        make_profile(kind, **kwargs)


def test_profiles_describe_themselves():
    assert make_profile("synchronous").describe() == "synchronous"
    assert make_profile("concurrent", concurrency=8).describe() == "concurrent@8"
    assert make_profile("constant", rate=2.5).describe() == "constant@2.5/s"
    assert make_profile("poisson", rate=4, burstiness=0.5).describe() == "poisson@4/s,b=0.5"
    assert make_profile("sweep", steps=5).describe() == "sweep@5"


def test_closed_loop_workers():
    assert make_profile("synchronous").workers == 1
    assert make_profile("concurrent", concurrency=6).workers == 6
    assert not make_profile("concurrent", concurrency=6).open_loop
    assert make_profile("poisson", rate=1).open_loop


def test_constant_rate_is_evenly_spaced():
    offsets = take(arrival_offsets(make_profile("constant", rate=4), seed=0), 5)
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_poisson_is_seeded_and_has_the_asked_mean_rate():
    profile = make_profile("poisson", rate=50)
    a = take(arrival_offsets(profile, seed=7), 5000)
    b = take(arrival_offsets(profile, seed=7), 5000)
    c = take(arrival_offsets(profile, seed=8), 5000)
    assert a == b and a != c
    assert a[0] == 0.0 and all(y > x for x, y in itertools.pairwise(a))
    gaps = np.diff(a)
    assert abs(gaps.mean() - 1 / 50) < 0.1 / 50  # 5000 gaps: well within 10 %
    # Exponential gaps (burstiness 1): coefficient of variation close to 1.
    assert 0.9 < gaps.std() / gaps.mean() < 1.1


def test_burstiness_changes_the_spread_not_the_rate():
    smooth = np.diff(take(arrival_offsets(make_profile("poisson", rate=20, burstiness=8), seed=1), 4000))
    bursty = np.diff(take(arrival_offsets(make_profile("poisson", rate=20, burstiness=0.25), seed=1), 4000))
    assert abs(smooth.mean() - 0.05) < 0.005 and abs(bursty.mean() - 0.05) < 0.01
    # Gamma(k): CV = 1/sqrt(k), so 0.35 for k=8 and 2 for k=0.25.
    assert smooth.std() / smooth.mean() < 0.5 < 1.5 < bursty.std() / bursty.mean()


def test_sweep_starts_synchronous_then_max_throughput_then_rates():
    sweep = make_profile("sweep", steps=4, concurrency=16)
    head = sweep_head(sweep)
    assert [p.describe() for p in head] == ["synchronous", "concurrent@16"]
    assert rate_step(sweep, 3.0).describe() == "constant@3/s"
    assert make_profile("sweep", steps=3).concurrency == 32  # default max-throughput concurrency
