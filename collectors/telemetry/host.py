"""Host and process telemetry: psutil's figures, read through kept-open ``/proc`` files on Linux.

Per-tick figures (whole-machine CPU and memory, the watched process) are read
on every ``collect()``; the rest (per-core CPU, load average, swap, disk and
network IO) once every ``detail_every_s`` (1 s by default), because at 10 Hz
they would multiply rows and CPU cost for values that change slowly or that
the kernel itself refreshes every few seconds (load average: 5 s). Those
readings carry ``interval_s`` so the stored rows say how often they were taken.

On Linux the per-tick values come from ``/proc/stat``, ``/proc/meminfo`` and
``/proc/<pid>/stat`` kept open (:mod:`procfs`; 2.5x cheaper than psutil's
open-per-call); elsewhere psutil is called. Both use psutil's formulas.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

import psutil

from gemmawatch.collectors.telemetry import procfs
from gemmawatch.collectors.telemetry.reading import BYTES_PER_MB, Reading

log = logging.getLogger(__name__)

#: Shortest window a CPU percent or IO rate is reported for. They are measured
#: since the previous reading and the kernel counts CPU time in 10 ms ticks, so
#: a shorter window is 0.0 or wildly quantised; such readings are omitted instead.
#: (Kept below the fastest sampling interval anyone should use, 0.05 s.)
MIN_CPU_WINDOW_S = 0.02

#: Default period of the slow host figures (per-core CPU, load, swap, disk, network).
DEFAULT_DETAIL_EVERY_S = 1.0

#: (metric, psutil counter field) of the IO rates, per counter source.
_DISK_RATES = (("disk.read_bytes_per_s", "read_bytes"), ("disk.write_bytes_per_s", "write_bytes"))
_NET_RATES = (("net.recv_bytes_per_s", "bytes_recv"), ("net.sent_bytes_per_s", "bytes_sent"))


def _open_procfs(path: str) -> procfs.ProcFile | None:
    try:
        return procfs.ProcFile(path)
    except OSError:
        return None


def _io_counters() -> dict[str, float]:
    """Machine-wide disk and network byte counters (missing ones omitted: containers, no disks)."""
    out: dict[str, float] = {}
    for read, rates in ((psutil.disk_io_counters, _DISK_RATES), (psutil.net_io_counters, _NET_RATES)):
        try:
            counters: Any = read()
        except (OSError, RuntimeError):
            counters = None
        if counters is not None:
            out.update({metric: float(getattr(counters, field)) for metric, field in rates})
    return out


class HostCollector:
    """Whole-machine CPU, memory, swap, load and IO.

    Every call: ``cpu.percent`` (all cores, 0-100), ``memory.used_mb`` (MB; total -
    available, like psutil and ``free``), ``memory.percent``.

    Every ``detail_every_s`` (0 = every call): ``cpu.core_percent`` (label
    ``core``), ``cpu.load_1m`` / ``cpu.load_5m`` / ``cpu.load_15m`` (unit
    ``tasks``: runnable tasks averaged by the kernel), ``swap.used_mb`` (0 when
    there is no swap) and ``swap.percent`` (omitted without swap), and the
    machine-wide IO rates ``disk.read_bytes_per_s``, ``disk.write_bytes_per_s``,
    ``net.recv_bytes_per_s``, ``net.sent_bytes_per_s`` (unit ``B/s``).

    Rates, not raw counters: CPU percentages and IO rates are measured since the
    collector's previous reading of them, which it keeps (psutil's counters are
    wrap-corrected). The constructor takes the first baseline, and a reading
    whose window is shorter than ``MIN_CPU_WINDOW_S`` (a sampler's first tick
    right after construction) is omitted rather than reported as 0. A counter
    that went backwards (a device removed) yields no rate for that window. Each
    collector keeps its own baselines, so several can sample side by side.

    Args:
        detail_every_s: Period of the slow figures, in seconds.
        use_procfs: Read ``/proc`` directly (``None``: when it exists). False
            forces the psutil calls (tests compare both).
    """

    source = "psutil"

    def __init__(self, detail_every_s: float = DEFAULT_DETAIL_EVERY_S, *, use_procfs: bool | None = None) -> None:
        if detail_every_s < 0:
            raise ValueError(f"detail_every_s must be >= 0, got {detail_every_s}")
        self.detail_every_s = float(detail_every_s)
        self._detail_interval = self.detail_every_s or None
        self._stat: procfs.ProcFile | None = None
        self._meminfo: procfs.ProcFile | None = None
        if use_procfs is not False:
            self._stat = _open_procfs("/proc/stat")
            self._meminfo = _open_procfs("/proc/meminfo")
            if self._stat is None or self._meminfo is None:
                self.close()
        now = time.monotonic()
        aggregate, cores = self._cpu_times(cores=True)
        self._cpu_prev, self._cpu_last = procfs.cpu_busy_total(aggregate), now
        self._cores_prev = {core: procfs.cpu_busy_total(t) for core, t in cores.items()}
        self._io_prev, self._detail_last = _io_counters(), now
        self._next_detail = now

    @property
    def uses_procfs(self) -> bool:
        """True when the per-tick figures come from kept-open ``/proc`` files."""
        return self._stat is not None

    def collect(self) -> Iterable[Reading]:
        """Read the per-tick figures, and the slow ones when they are due."""
        now = time.monotonic()
        detail = now >= self._next_detail
        if detail:
            self._next_detail = max(self._next_detail + self.detail_every_s, now)
        aggregate, cores = self._cpu_times(cores=detail)
        out: list[Reading] = []
        cpu = procfs.cpu_busy_total(aggregate)
        if now - self._cpu_last >= MIN_CPU_WINDOW_S:
            percent = procfs.busy_percent(self._cpu_prev, cpu)
            if percent is not None:
                out.append(Reading(self.source, "cpu.percent", percent, "%"))
        self._cpu_prev, self._cpu_last = cpu, now
        swap = self._memory(out, swap=detail)
        if detail:
            self._detail(out, now, cores, swap)
        return out

    def _cpu_times(self, *, cores: bool) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]]]:
        if self._stat is not None:
            return procfs.parse_stat_cpus(self._stat.read(), cores=cores)
        aggregate = tuple(psutil.cpu_times())
        per_core = psutil.cpu_times(percpu=True) if cores else []
        return aggregate, {str(i): tuple(t) for i, t in enumerate(per_core)}

    def _memory(self, out: list[Reading], *, swap: bool) -> tuple[int, int] | None:
        """Append the RAM readings; returns (swap total, swap free) when ``swap`` and /proc/meminfo gave them."""
        info = procfs.parse_meminfo(self._meminfo.read(), swap=swap) if self._meminfo is not None else None
        if info is not None and info.available is not None:
            used, percent = float(info.used), info.percent
        else:
            mem = psutil.virtual_memory()
            used, percent = float(mem.used), float(mem.percent)
        out.append(Reading(self.source, "memory.used_mb", used / BYTES_PER_MB, "MB"))
        out.append(Reading(self.source, "memory.percent", float(percent), "%"))
        return (info.swap_total, info.swap_free) if info is not None and swap else None

    def _detail(
        self, out: list[Reading], now: float, cores: dict[str, tuple[float, ...]], swap: tuple[int, int] | None
    ) -> None:
        every = self._detail_interval
        window = now - self._detail_last
        long_enough = window >= MIN_CPU_WINDOW_S
        for core, times in cores.items():
            busy_total = procfs.cpu_busy_total(times)
            before = self._cores_prev.get(core)
            core_percent = procfs.busy_percent(before, busy_total) if before is not None and long_enough else None
            if core_percent is not None:
                out.append(Reading(self.source, "cpu.core_percent", core_percent, "%", {"core": core}, every))
            self._cores_prev[core] = busy_total
        for minutes, load in zip((1, 5, 15), psutil.getloadavg(), strict=True):
            out.append(Reading(self.source, f"cpu.load_{minutes}m", float(load), "tasks", {}, every))
        if swap is None:
            sw = psutil.swap_memory()
            swap = (int(sw.total), int(sw.free))
        total, free = swap
        out.append(Reading(self.source, "swap.used_mb", (total - free) / BYTES_PER_MB, "MB", {}, every))
        if total > 0:
            percent = round(100.0 * (total - free) / total, 1)
            out.append(Reading(self.source, "swap.percent", percent, "%", {}, every))
        counters = _io_counters()
        if long_enough:
            for metric, value in counters.items():
                previous = self._io_prev.get(metric)
                if previous is not None and value >= previous:
                    out.append(Reading(self.source, metric, (value - previous) / window, "B/s", {}, every))
        self._io_prev, self._detail_last = counters, now

    def close(self) -> None:
        """Close the kept ``/proc`` files (later calls use psutil)."""
        for f in (self._stat, self._meminfo):
            if f is not None:
                f.close()
        self._stat = self._meminfo = None


class ProcessCollector:
    """One process: ``process.cpu_percent`` and ``process.rss_mb`` (label ``pid``).

    ``pid=None`` watches the current process, which is where in-process backends
    (transformers, llama.cpp) run the model; HTTP backends talk to servers whose
    PID gemmawatch does not know (they may be on another machine), so pass it
    explicitly to watch one. ``process.cpu_percent`` is per core, as in ``top``:
    a process busy on two cores reads 200. Like the host CPU figure it is
    measured since the previous call, primed at construction and omitted for
    too short a window. Once the process has exited (or access is denied)
    ``collect()`` yields nothing and logs that once.

    Raises:
        psutil.NoSuchProcess: at construction, for a PID that does not exist.
    """

    source = "psutil"

    def __init__(self, pid: int | None = None, *, use_procfs: bool | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self._proc = psutil.Process(self.pid)  # raises psutil.NoSuchProcess for a bad pid, on purpose
        self._stat = _open_procfs(f"/proc/{self.pid}/stat") if use_procfs is not False else None
        self._cpu_prev = self._cpu_seconds() if self._stat is not None else None
        if self._stat is None:
            self._proc.cpu_percent(interval=None)  # prime psutil's baseline (its first call returns 0.0)
        self._last = time.monotonic()
        self._gone_logged = False

    def collect(self) -> Iterable[Reading]:
        """Read the process's CPU percent and resident set size."""
        labels = {"pid": self.pid}
        now = time.monotonic()
        window = now - self._last
        try:
            cpu, rss = self._read(window)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError) as exc:
            if not self._gone_logged:
                name = type(exc).__name__
                log.info("process %d can no longer be sampled (%s); skipping it", self.pid, name)
                self._gone_logged = True
            return []
        self._last = now
        out = [Reading(self.source, "process.rss_mb", rss / BYTES_PER_MB, "MB", dict(labels))]
        if window >= MIN_CPU_WINDOW_S and cpu is not None:
            out.insert(0, Reading(self.source, "process.cpu_percent", cpu, "%", dict(labels)))
        return out

    def _cpu_seconds(self) -> float:
        assert self._stat is not None
        return procfs.parse_pid_stat(self._stat.read())[0]

    def _read(self, window: float) -> tuple[float | None, float]:
        """(CPU percent since the previous call, RSS bytes)."""
        if self._stat is None:
            with self._proc.oneshot():  # psutil caches what both values share
                return float(self._proc.cpu_percent(interval=None)), float(self._proc.memory_info().rss)
        cpu_s, rss = procfs.parse_pid_stat(self._stat.read())
        assert self._cpu_prev is not None
        percent = round(100.0 * (cpu_s - self._cpu_prev) / window, 1) if window > 0 else None
        self._cpu_prev = cpu_s
        return percent, float(rss)

    def close(self) -> None:
        """Close the kept ``/proc/<pid>/stat`` (later calls use psutil)."""
        if self._stat is not None:
            self._stat.close()
            self._stat = None
            self._proc.cpu_percent(interval=None)
