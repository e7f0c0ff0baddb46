"""One production target as the monitor sees it: its backend, its rate limit and its backoff.

The backend is connected lazily on the first probe and kept; a target that
cannot be loaded or reached yields failed results (never an exception), so an
outage is recorded as probes with ``probe.up = 0``. After ``n`` failures in a
row the target rests ``min(max, initial * 2**(n-1))`` seconds: probes that fall
in that rest are skipped (and counted), the first success ends it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.errors import ConfigError, GemmawatchError, MissingDependencyError, UnknownNameError, one_line

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend
    from gemmawatch.collectors.monitor.ratelimit import TokenBucket

log = logging.getLogger(__name__)

__all__ = ["Backoff", "Endpoint", "SkipReason", "probe_target_info"]

#: Why a due probe was not sent.
SkipReason = str  # "backoff" | "rate_limit" | "busy"

#: Options a probe sets on HTTP backends unless the target sets them: one attempt
#: per probe (the monitor's own backoff replaces the client's retries, and a retry
#: would hide the failure it should record) and the probe's timeout.
_HTTP_BACKENDS = ("openai", "ollama")


def probe_target_info(info: TargetInfo, timeout_s: float) -> TargetInfo:
    """``info`` with the probe defaults for HTTP backends (the target's own options win)."""
    if info.backend not in _HTTP_BACKENDS:
        return info
    defaults: dict[str, object] = {"timeout_s": timeout_s}
    if info.backend == "openai":
        defaults["max_retries"] = 0
    return replace(info, options={**defaults, **info.options})


class Backoff:
    """Exponential rest after consecutive failures (monotonic seconds; ``clock`` injectable)."""

    def __init__(self, initial_s: float, max_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_s = float(initial_s)
        self.max_s = max(float(max_s), self.initial_s)
        self._clock = clock
        self.failures = 0
        self.resume_at = 0.0

    def resting(self) -> bool:
        """True while the target rests after a failure."""
        return self.failures > 0 and self._clock() < self.resume_at

    def failed(self) -> float:
        """Record a failure; returns the seconds of rest it starts."""
        self.failures += 1
        delay = min(self.max_s, self.initial_s * 2 ** min(self.failures - 1, 30))
        self.resume_at = self._clock() + delay
        return delay

    def succeeded(self) -> None:
        """Record a success: no more rest."""
        self.failures = 0
        self.resume_at = 0.0


def _failed(error_class: str, message: str) -> GenerationResult:
    return GenerationResult(
        text="",
        input_tokens=0,
        output_tokens=0,
        token_source="chunks",
        started_at=datetime.now(UTC),
        error=message,
        error_class=error_class,
    )


class Endpoint:
    """A target, connected on demand, with its token bucket and backoff (thread-safe)."""

    def __init__(
        self,
        info: TargetInfo,
        *,
        bucket: TokenBucket,
        backoff: Backoff,
        loader: Callable[[TargetInfo], Backend] | None = None,
    ) -> None:
        self.info = info
        self.name = info.name
        self.bucket = bucket
        self.backoff = backoff
        self._loader = loader
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        #: Last probe verdict (None before the first).
        self.up: bool | None = None

    def admit(self) -> SkipReason | None:
        """None when a probe may go now (a token is taken), else why it must be skipped."""
        with self._lock:
            if self.backoff.resting():
                return "backoff"
        return None if self.bucket.try_acquire() else "rate_limit"

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """Send one probe; connection and load failures come back as failed results."""
        backend = self._connect()
        if isinstance(backend, GenerationResult):
            return backend
        try:
            return backend.stream(request)
        except Exception as exc:  # the Backend contract says stream() does not raise; be safe anyway
            log.debug("probe on %s raised", self.name, exc_info=True)
            return _failed(type(exc).__name__, one_line(f"{type(exc).__name__}: {exc}")[:500])

    def _connect(self) -> Backend | GenerationResult:
        if self._backend is not None:
            return self._backend
        loader = self._loader
        if loader is None:
            from gemmawatch.collectors.targets import load_backend

            loader = load_backend
        try:
            self._backend = loader(self.info)
        except (ConfigError, UnknownNameError, MissingDependencyError) as exc:
            # A mistake in the target itself: keep recording it, loudly, instead of stopping every other probe.
            log.error("target %s cannot be used: %s", self.name, one_line(str(exc)))
            return _failed("config_error", one_line(str(exc))[:500])
        except GemmawatchError as exc:
            return _failed("unreachable", one_line(str(exc))[:500])
        except Exception as exc:
            log.debug("loading %s failed", self.name, exc_info=True)
            return _failed("load_error", one_line(f"{type(exc).__name__}: {exc}")[:500])
        return self._backend

    def record(self, ok: bool) -> float:
        """Update the backoff after a probe; returns the seconds of rest started (0 after a success)."""
        with self._lock:
            self.up = ok
            if ok:
                self.backoff.succeeded()
                return 0.0
            return self.backoff.failed()

    def close(self) -> None:
        """Release the backend (its HTTP client or model)."""
        backend, self._backend = self._backend, None
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()
