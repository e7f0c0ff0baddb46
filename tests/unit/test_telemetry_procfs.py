"""The /proc parsers and formulas, on fixed text and against psutil."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from gemmawatch.collectors.telemetry import procfs

STAT = b"""cpu  100 10 50 800 40 5 5 0 20 0
cpu0 60 5 30 380 20 3 2 0 20 0
cpu1 40 5 20 420 20 2 3 0 0 0
intr 2093379 0 0 0 0 0 0 0
ctxt 123
cpu9 this line is not a cpu line: the cpu block is over
"""

MEMINFO = b"""MemTotal:       16000000 kB
MemFree:         2000000 kB
MemAvailable:    12000000 kB
Buffers:          100000 kB
SwapCached:            0 kB
SwapTotal:       4000000 kB
SwapFree:        3000000 kB
"""


def test_stat_cpu_lines_are_parsed_and_the_rest_skipped() -> None:
    aggregate, cores = procfs.parse_stat_cpus(STAT)
    assert aggregate == (100, 10, 50, 800, 40, 5, 5, 0, 20, 0)
    assert set(cores) == {"0", "1"} and cores["1"][3] == 420
    assert procfs.parse_stat_cpus(STAT, cores=False) == (aggregate, {})


def test_busy_and_total_follow_psutil() -> None:
    # guest time is already inside user: excluded from the total; idle = idle + iowait.
    busy, total = procfs.cpu_busy_total((100, 10, 50, 800, 40, 5, 5, 0, 20, 0))
    assert total == 1010 and busy == 170
    assert procfs.cpu_busy_total((1, 2, 3, 4)) == (6, 10)  # an old kernel's four fields
    assert procfs.busy_percent((150, 990), (200, 1090)) == 50.0
    assert procfs.busy_percent((150, 990), (150, 990)) is None  # no time passed
    assert procfs.busy_percent((150, 990), (260, 1090)) == 100.0  # clamped


def test_meminfo_gives_psutil_used_and_percent() -> None:
    info = procfs.parse_meminfo(MEMINFO)
    assert info.total == 16000000 * 1024 and info.available == 12000000 * 1024
    assert info.used == 4000000 * 1024 and info.percent == 25.0
    assert (info.swap_total, info.swap_free) == (4000000 * 1024, 3000000 * 1024)
    assert procfs.parse_meminfo(MEMINFO, swap=False).swap_total == 0
    no_available = MEMINFO.replace(b"MemAvailable:    12000000 kB\n", b"")
    assert procfs.parse_meminfo(no_available).available is None  # the caller asks psutil then
    assert procfs.parse_meminfo(MEMINFO.replace(b"12000000", b"0")).available is None


def test_pid_stat_fields_are_counted_from_the_last_parenthesis() -> None:
    fields = ["S", "1"] + ["0"] * 9 + ["250", "50"] + ["0"] * 8 + ["1000"] + ["0"] * 20
    data = b"1234 (evil) name (x)) " + " ".join(fields).encode()
    cpu_s, rss = procfs.parse_pid_stat(data)
    assert cpu_s == pytest.approx(300 / procfs.CLOCK_TICKS)
    assert rss == 1000 * procfs.PAGE_SIZE


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux procfs")
def test_kept_open_files_match_psutil_on_this_machine() -> None:
    meminfo = procfs.ProcFile("/proc/meminfo")
    stat = procfs.ProcFile(f"/proc/{os.getpid()}/stat")
    try:
        info = procfs.parse_meminfo(meminfo.read())
        assert info.total == psutil.virtual_memory().total
        assert info.used == pytest.approx(psutil.virtual_memory().used, rel=0.05)
        cpu_s, rss = procfs.parse_pid_stat(stat.read())
        times = psutil.Process().cpu_times()
        assert cpu_s == pytest.approx(times.user + times.system, abs=0.05)
        assert rss == pytest.approx(psutil.Process().memory_info().rss, rel=0.1)
        first = meminfo.read()
        assert meminfo.read()[:20] == first[:20]  # re-read from offset 0 every time
    finally:
        meminfo.close()
        stat.close()
        stat.close()  # idempotent
    with pytest.raises(ValueError):
        stat.read()
    with pytest.raises(OSError):
        procfs.ProcFile("/proc/definitely-not-a-file")


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux procfs")
def test_a_large_file_is_read_completely(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * (200_000) + b"end")
    f = procfs.ProcFile(str(path))
    try:
        assert f.read().endswith(b"end") and len(f.read()) == 200_003
    finally:
        f.close()
