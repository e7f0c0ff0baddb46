"""Load profiles: how requests are released to the server.

* ``synchronous`` - one request at a time (closed loop, concurrency 1): the
  single-user latency floor.
* ``concurrent`` - N requests always in flight (closed loop): a new request
  starts as soon as one finishes.
* ``constant`` - open loop at a fixed rate R (requests/s), evenly spaced,
  whatever the server does; the generator never waits for answers.
* ``poisson`` - open loop at mean rate R with gamma-distributed gaps, as in
  vLLM's ``benchmark_serving``: shape = burstiness, scale = 1 / (R * burstiness).
  Burstiness 1 is a Poisson process; below 1 is burstier, above 1 smoother.
* ``sweep`` - K steps from synchronous to saturation, as in GuideLLM: step 0
  synchronous, step 1 as many in flight as ``concurrency`` allows (the max
  throughput), then K-2 constant rates evenly spaced between the two measured
  throughputs. Each step gets the full request and time budget.

Open-loop profiles cap the requests in flight at ``max_inflight`` so a dead
server cannot make the generator open sockets without bound; a request held
back by the cap is sent late and its lag is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from gemmawatch.errors import ConfigError

ProfileKind = Literal["synchronous", "concurrent", "constant", "poisson", "sweep"]
PROFILES: tuple[str, ...] = ("synchronous", "concurrent", "constant", "poisson", "sweep")
#: In-flight cap of open-loop profiles unless the user sets one.
DEFAULT_MAX_INFLIGHT = 1024
#: Requests in flight of a sweep's max-throughput step unless ``--concurrency`` says otherwise.
DEFAULT_SWEEP_CONCURRENCY = 32


@dataclass(frozen=True)
class Profile:
    """One load profile as the user asked for it (validated by :func:`make_profile`)."""

    kind: ProfileKind
    concurrency: int | None = None
    rate: float | None = None
    burstiness: float = 1.0
    steps: int | None = None
    max_inflight: int = DEFAULT_MAX_INFLIGHT

    @property
    def open_loop(self) -> bool:
        """True when sends follow a clock rather than answers."""
        return self.kind in ("constant", "poisson")

    @property
    def workers(self) -> int:
        """Requests in flight of a closed-loop profile (1 for synchronous)."""
        return 1 if self.kind == "synchronous" else int(self.concurrency or 1)

    def describe(self) -> str:
        """A short label, e.g. ``concurrent@8`` or ``poisson@2.5/s``."""
        if self.kind == "concurrent":
            return f"concurrent@{self.concurrency}"
        if self.open_loop:
            b = "" if self.burstiness == 1.0 or self.kind == "constant" else f",b={self.burstiness:g}"
            return f"{self.kind}@{self.rate:.3g}/s{b}"
        if self.kind == "sweep":
            return f"sweep@{self.steps}"
        return self.kind

    def as_dict(self) -> dict[str, object]:
        """The profile as stored with the run."""
        return {
            "kind": self.kind,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "burstiness": self.burstiness,
            "steps": self.steps,
            "max_inflight": self.max_inflight,
        }


def make_profile(
    kind: str,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    burstiness: float = 1.0,
    steps: int | None = None,
    max_inflight: int | None = None,
) -> Profile:
    """Validate a profile; every mistake is a one-line ConfigError naming the fix."""
    if kind not in PROFILES:
        raise ConfigError(f"Unknown profile '{kind}'. Available: {', '.join(PROFILES)}")
    if max_inflight is not None and max_inflight < 1:
        raise ConfigError(f"--max-inflight must be >= 1, got {max_inflight}")
    cap = max_inflight or DEFAULT_MAX_INFLIGHT
    if kind == "concurrent":
        if concurrency is None or concurrency < 1:
            raise ConfigError("Profile 'concurrent' needs --concurrency N (N >= 1)")
        return Profile("concurrent", concurrency=concurrency, max_inflight=cap)
    if kind in ("constant", "poisson"):
        if rate is None or not rate > 0:
            raise ConfigError(f"Profile '{kind}' needs --rate R (requests per second, > 0)")
        if not burstiness > 0:
            raise ConfigError(f"--burstiness must be > 0, got {burstiness}")
        return Profile(kind, rate=float(rate), burstiness=float(burstiness), max_inflight=cap)  # type: ignore[arg-type]
    if kind == "sweep":
        if steps is None or steps < 2:
            raise ConfigError("Profile 'sweep' needs --steps K (K >= 2: synchronous, max throughput, then rates)")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        return Profile("sweep", concurrency=concurrency or DEFAULT_SWEEP_CONCURRENCY, steps=steps, max_inflight=cap)
    return Profile("synchronous", max_inflight=cap)


def sweep_head(profile: Profile) -> list[Profile]:
    """The two measured steps every sweep starts with: synchronous, then max throughput."""
    return [
        Profile("synchronous", max_inflight=profile.max_inflight),
        Profile("concurrent", concurrency=profile.concurrency, max_inflight=profile.max_inflight),
    ]


def rate_step(profile: Profile, rate: float) -> Profile:
    """A constant-rate step of a sweep."""
    return replace(profile, kind="constant", rate=rate, steps=None, concurrency=None)


def arrival_offsets(profile: Profile, seed: int) -> Iterator[float]:
    """Planned send times (seconds from the step start) of an open-loop profile, forever.

    The first request goes out at 0. Constant: ``k / R``. Poisson: cumulative
    gamma gaps drawn from a generator seeded with ``seed``, so two runs (or two
    variants) see the same arrival pattern.
    """
    if profile.rate is None:
        raise ValueError("arrival_offsets needs an open-loop profile")
    rate = profile.rate
    if profile.kind == "constant":
        k = 0
        while True:
            yield k / rate
            k += 1
    rng = np.random.default_rng(seed)
    shape = profile.burstiness
    scale = 1.0 / (rate * shape)
    t = 0.0
    yield t
    while True:
        # Draw gaps in blocks: one numpy call per 1024 requests keeps the generator cheap.
        for gap in rng.gamma(shape, scale, size=1024):
            t += float(gap)
            yield t
