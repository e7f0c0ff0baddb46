"""A token bucket per target, so canary probes never load production noticeably."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most ``per_minute`` probes a minute on average, bursts of at most ``burst``.

    The bucket holds up to ``burst`` tokens (default: ``per_minute``, so probes
    of one target that share a fire time all pass) and refills continuously at
    ``per_minute / 60`` tokens a second. A probe that finds no whole token is
    skipped, not delayed: a canary that waits would measure the queue it made.
    Thread-safe; ``clock`` is injectable for tests (monotonic seconds).
    """

    def __init__(
        self, per_minute: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(per_minute) and per_minute > 0):
            raise ValueError(f"per_minute must be > 0, got {per_minute}")
        capacity = per_minute if burst is None else burst
        if not (math.isfinite(capacity) and capacity >= 1):
            raise ValueError(f"burst must be >= 1, got {capacity}")
        self.per_minute = float(per_minute)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = self.capacity  # a fresh monitor may probe at once
        self._last = clock()
        self._lock = threading.Lock()
        self.granted = 0
        self.refused = 0

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.per_minute / 60.0)

    def try_acquire(self) -> bool:
        """Take one token if there is one; False (and counted in ``refused``) otherwise."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.granted += 1
                return True
            self.refused += 1
            return False

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional while refilling)."""
        with self._lock:
            self._refill()
            return self._tokens
