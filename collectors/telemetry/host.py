"""Host and process telemetry through psutil."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

import psutil

from gemmawatch.collectors.telemetry.reading import BYTES_PER_MB, Reading

log = logging.getLogger(__name__)

#: Shortest window a CPU percent is reported for. psutil measures since the
#: previous call and the kernel counts CPU time in 10 ms ticks, so a shorter
#: window is 0.0 or wildly quantised; such readings are omitted instead.
#: (Kept below the fastest sampling interval anyone should use, 0.05 s.)
MIN_CPU_WINDOW_S = 0.02


class _CpuWindow:
    """Remembers when a CPU-percent baseline was last taken."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def long_enough(self) -> bool:
        now = time.monotonic()
        ok = now - self.last >= MIN_CPU_WINDOW_S
        self.last = now  # the psutil call that follows resets the baseline either way
        return ok


class HostCollector:
    """Whole-machine CPU and memory: ``cpu.percent``, ``memory.used_mb``, ``memory.percent``.

    ``cpu.percent`` uses the non-blocking ``psutil.cpu_percent(interval=None)``,
    which reports utilisation since its previous call. Its very first call
    returns a meaningless ``0.0``, so the constructor primes it; a call less
    than ``MIN_CPU_WINDOW_S`` after the previous one (e.g. a sampler's first
    tick right after construction) omits ``cpu.percent`` rather than report 0.
    psutil keeps that baseline module-wide, so several HostCollectors sampling
    at once shorten each other's window (values stay valid, only noisier).
    """

    source = "psutil"

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # prime: the first call always returns 0.0
        self._window = _CpuWindow()

    def collect(self) -> Iterable[Reading]:
        """Read system CPU percent (all cores, 0-100) and virtual memory."""
        out: list[Reading] = []
        long_enough = self._window.long_enough()
        cpu = float(psutil.cpu_percent(interval=None))
        if long_enough:
            out.append(Reading(self.source, "cpu.percent", cpu, "%"))
        mem = psutil.virtual_memory()
        out.append(Reading(self.source, "memory.used_mb", mem.used / BYTES_PER_MB, "MB"))
        out.append(Reading(self.source, "memory.percent", float(mem.percent), "%"))
        return out


class ProcessCollector:
    """One process: ``process.cpu_percent`` and ``process.rss_mb`` (label ``pid``).

    ``pid=None`` watches the current process (where the model runs in-process).
    ``process.cpu_percent`` is per core, as in ``top``: a process busy on two
    cores reads 200. Like the host CPU figure it is measured since the previous
    call, primed at construction and omitted for too short a window. Once the process has exited (or access is
    denied) ``collect()`` yields nothing and logs that once.
    """

    source = "psutil"

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self._proc = psutil.Process(self.pid)  # raises psutil.NoSuchProcess for a bad pid, on purpose
        self._proc.cpu_percent(interval=None)  # prime, see the class docstring
        self._window = _CpuWindow()
        self._gone_logged = False

    def collect(self) -> Iterable[Reading]:
        """Read the process's CPU percent and resident set size."""
        labels = {"pid": self.pid}
        long_enough = self._window.long_enough()
        try:
            with self._proc.oneshot():  # one /proc read for both values
                cpu = float(self._proc.cpu_percent(interval=None))
                rss = self._proc.memory_info().rss / BYTES_PER_MB
        except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
            if not self._gone_logged:
                name = type(exc).__name__
                log.info("process %d can no longer be sampled (%s); skipping it", self.pid, name)
                self._gone_logged = True
            return []
        out = [Reading(self.source, "process.rss_mb", rss, "MB", dict(labels))]
        if long_enough:
            out.insert(0, Reading(self.source, "process.cpu_percent", cpu, "%", dict(labels)))
        return out
