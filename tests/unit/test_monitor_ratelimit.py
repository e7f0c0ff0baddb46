"""The per-target token bucket."""

from __future__ import annotations

import pytest

from gemmawatch.collectors.monitor.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refuses_and_counts() -> None:
    clock = FakeClock()
    bucket = TokenBucket(6, clock=clock)  # 6 a minute: one token every 10 s, burst 6
    assert [bucket.try_acquire() for _ in range(8)] == [True] * 6 + [False, False]
    assert (bucket.granted, bucket.refused) == (6, 2)


def test_bucket_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(6, burst=1, clock=clock)
    assert bucket.try_acquire()
    clock.now += 9.9
    assert not bucket.try_acquire()
    clock.now += 0.1
    assert bucket.try_acquire()
    clock.now += 3600  # a long pause refills only up to the burst
    assert bucket.tokens == pytest.approx(1.0)
    assert bucket.try_acquire() and not bucket.try_acquire()


def test_bucket_long_run_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(12, burst=2, clock=clock)
    granted = 0
    for _ in range(600):  # ten minutes, asked every second
        granted += bucket.try_acquire()
        clock.now += 1
    assert 120 <= granted <= 122  # 12/min for 10 min, plus the initial burst


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("nan"), None), (6, 0.5)])
def test_bucket_rejects_bad_settings(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst=burst)
