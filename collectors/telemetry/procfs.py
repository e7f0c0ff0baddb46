"""Cheap repeated reads of Linux ``/proc`` files for the per-tick host and process figures.

psutil opens, reads and closes a ``/proc`` file for every call. At 10 Hz the
open/close dominates: on the reference machine a cold ``open()+read()`` of
``/proc/stat`` costs ~125 us of CPU and a ``pread()`` on a descriptor kept open
~50 us (``benchmarks/telemetry_overhead.py``). The kernel regenerates these
files on every read from offset 0, so a kept descriptor always sees fresh
values. The parsers below compute the figures exactly as psutil does (same
formulas), so both paths report the same numbers; :mod:`host` falls back to
psutil where ``/proc`` is absent (macOS, Windows).

A descriptor of ``/proc/<pid>/stat`` stays bound to that process: once it has
exited, reads fail with ``ProcessLookupError`` even if the PID is reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Fields of a ``cpu`` line of /proc/stat, in order (later kernels may add more).
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")

_READ_SIZE = 1 << 16


def cpu_busy_total(times: tuple[float, ...]) -> tuple[float, float]:
    """(busy, total) of one CPU-times tuple in the order of :data:`CPU_FIELDS`, as psutil counts them.

    ``guest`` and ``guest_nice`` are already included in ``user``/``nice`` on
    Linux, so they are subtracted from the total; idle time is ``idle + iowait``.
    """
    total = sum(times)
    if len(times) > 9:
        total -= times[8] + times[9]
    elif len(times) > 8:
        total -= times[8]
    idle = times[3] + (times[4] if len(times) > 4 else 0.0)
    return total - idle, total


def busy_percent(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    """CPU percent between two (busy, total) pairs, 0-100 rounded to 0.1 like psutil; None when no time passed."""
    d_total = after[1] - before[1]
    if d_total <= 0:
        return None
    percent = 100.0 * (after[0] - before[0]) / d_total
    return round(min(100.0, max(0.0, percent)), 1)


class ProcFile:
    """One ``/proc`` file kept open and re-read from offset 0 with ``pread``.

    Raises:
        OSError: the file cannot be opened (no procfs, process gone, access denied).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def read(self) -> bytes:
        """The file's current content (ProcessLookupError once its process has exited)."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        data = os.pread(self._fd, _READ_SIZE, 0)
        if len(data) < _READ_SIZE:
            return data
        chunks = [data]  # a very large file (/proc/stat on a big machine): read on
        while len(data) == _READ_SIZE:
            data = os.pread(self._fd, _READ_SIZE, _READ_SIZE * len(chunks))
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def parse_stat_cpus(data: bytes, *, cores: bool = True) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]]]:
    """The aggregate ``cpu`` line and (``cores``) the per-core ``cpuN`` lines of /proc/stat, in clock ticks.

    Returns:
        (aggregate times, {core number as a string: times}); offline cores are
        absent, and the dict is empty when ``cores`` is False.
    """
    if not cores:
        first = data[: data.find(b"\n")].split()
        return tuple(float(v) for v in first[1:]), {}
    aggregate: tuple[float, ...] = ()
    per_core: dict[str, tuple[float, ...]] = {}
    for line in data.split(b"\n"):
        if not line.startswith(b"cpu"):
            if per_core or aggregate:
                break  # the cpu lines come first; skip the (long) rest
            continue
        name, *values = line.split()
        times = tuple(float(v) for v in values)
        if name == b"cpu":
            aggregate = times
        else:
            per_core[name[3:].decode()] = times
    return aggregate, per_core


@dataclass(frozen=True, slots=True)
class MemInfo:
    """The /proc/meminfo fields gemmawatch reports, in bytes (``available`` None on kernels < 3.14)."""

    total: int
    available: int | None
    swap_total: int
    swap_free: int

    @property
    def used(self) -> int:
        """psutil's ``virtual_memory().used``: total - available."""
        assert self.available is not None
        return self.total - self.available

    @property
    def percent(self) -> float:
        """psutil's ``virtual_memory().percent``, rounded to 0.1."""
        return round(100.0 * self.used / self.total, 1) if self.total else 0.0


def _meminfo_kib(data: bytes, key: bytes) -> int | None:
    """The value of ``key`` (``b"MemTotal:"``) in /proc/meminfo, in KiB; None when absent."""
    start = data.find(key)
    if start < 0 or (start > 0 and data[start - 1 : start] != b"\n"):
        return None
    end = data.find(b"\n", start)
    return int(data[start + len(key) : end if end >= 0 else None].split()[0])


def parse_meminfo(data: bytes, *, swap: bool = True) -> MemInfo:
    """Parse /proc/meminfo (values there are in KiB); ``swap=False`` skips the swap fields (reported as 0).

    Four ``find`` calls rather than a parse of all ~50 lines: this runs on
    every tick, where it is three times cheaper.
    """
    total = (_meminfo_kib(data, b"MemTotal:") or 0) * 1024
    available = _meminfo_kib(data, b"MemAvailable:")
    if available is not None:
        available *= 1024
        if not 0 < available <= total:
            available = None  # psutil estimates these cases (kernel bug, containers); the caller asks psutil
    if not swap:
        return MemInfo(total, available, 0, 0)
    swap_total = (_meminfo_kib(data, b"SwapTotal:") or 0) * 1024
    swap_free = (_meminfo_kib(data, b"SwapFree:") or 0) * 1024
    return MemInfo(total, available, swap_total, swap_free)


#: Seconds per clock tick of /proc/<pid>/stat and bytes per page of its RSS.
CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
PAGE_SIZE = int(os.sysconf("SC_PAGE_SIZE")) if hasattr(os, "sysconf") else 4096


def parse_pid_stat(data: bytes) -> tuple[float, int]:
    """(user + system CPU seconds, resident set size in bytes) from /proc/<pid>/stat.

    The command name in parentheses may itself contain spaces and parentheses,
    so fields are counted from the last ``)``, as psutil does.
    """
    fields = data[data.rfind(b")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return cpu_s, int(fields[21]) * PAGE_SIZE
