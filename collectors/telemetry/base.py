"""The collector interface (modelled on prometheus_client's ``Collector``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from gemmawatch.collectors.telemetry.reading import Reading


@runtime_checkable
class Collector(Protocol):
    """Something that reads a snapshot of telemetry on demand.

    Contract for implementations:

    * ``collect()`` returns the readings of *now*; it does not accumulate
      history, and the sampler may call it from a background thread at any rate.
    * A metric that is unavailable on this machine (no GPU, a field the driver
      does not support, a process that exited) is *omitted*, not reported as
      ``0`` or ``NaN``; ``collect()`` may then yield nothing at all.
    * Expected conditions never raise; an unexpected exception is caught,
      logged and counted by the sampler, and the other collectors keep running.
    * Rate-type values (CPU percent, IO bytes per second) are measured since
      the previous reading, so the first call after construction is primed by
      the constructor. Besides those baselines a collector keeps only when its
      slow figures are next due (those readings carry ``interval_s``) and
      handles it reads through (kept-open ``/proc`` files, an NVML event set),
      which an optional ``close()`` releases.
    """

    #: Short origin name stored with every row (``"psutil"``, ``"nvml"``).
    source: str

    def collect(self) -> Iterable[Reading]:
        """Return the current readings (possibly none)."""
        ...
