"""Telemetry storage at scale: ingest rate vs raw sqlite3, and chart query time on 10k / 1M / 10M readings.

    python benchmarks/storage_scale.py [--sizes 10000,1000000,10000000] [--ingest-rows 100000]
                                       [--dir /tmp/gw-scale] [--postgres URL --pg-size 1000000]

Part 1 (ingest, goal >= 0.5x): the same telemetry rows (dicts, as the sampler hands them to its sink), in
batches of 1,000, into two fresh SQLite files with gemmawatch's schema: through
``gemmawatch.collectors.telemetry.storage_sink`` (one ``session_scope`` + ``queries.add_telemetry`` per batch)
vs ``sqlite3`` ``executemany`` of the same rows turned into tuples (one commit per batch, same pragmas).
Alternating, best of ``--repeats``.

Part 2 (chart query, goal: 10M within 3x of 10k): for each size a fresh SQLite file is filled in SQL (3 hosts,
20 metrics, GPU metrics labelled per GPU: 90 series, one reading per minute, a "monitor" run per week),
``rollup_telemetry`` runs once as a monitor would (defaults: raw kept 7 days, 1-minute rollups 90 days), then
the same chart queries are timed: ``telemetry_series`` of one metric over the whole range, ``max_points=1000``,
for one GPU's series and for all 6 GPUs merged (best of ``--repeats`` after a warm-up, each in a fresh
session). They are also timed before the rollup (everything aggregated from raw readings) to show what the
rollups buy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVERY_S = 60
RUN_DAYS = 7
METRIC = "gpu.util_percent"
#: The timed chart queries: one GPU's series, and the metric over all 6 GPUs (merged per bucket).
CHARTS: dict[str, dict[str, Any]] = {
    "one GPU": {"host": "node-a", "labels": {"gpu": "0"}},
    "all GPUs": {},
}
HOSTS = ["node-a", "node-b", "node-c"]
#: (source, metric, unit, base, spread) read once per host.
HOST_METRICS = [
    ("host", "cpu.percent", "%", 5.0, 90.0),
    ("host", "cpu.load1", "1", 0.1, 8.0),
    ("host", "mem.used_bytes", "B", 8e9, 16e9),
    ("host", "mem.percent", "%", 30.0, 60.0),
    ("host", "disk.read_bytes_s", "B/s", 0.0, 5e8),
    ("host", "disk.write_bytes_s", "B/s", 0.0, 5e8),
    ("host", "net.rx_bytes_s", "B/s", 0.0, 1e9),
    ("host", "net.tx_bytes_s", "B/s", 0.0, 1e9),
    ("process", "proc.rss_bytes", "B", 2e9, 4e9),
    ("process", "proc.cpu_percent", "%", 0.0, 200.0),
]
#: (source, metric, unit, base, spread) read once per GPU (2 per host), labelled {"gpu": i, "uuid": ...}.
GPU_METRICS = [
    ("nvml", METRIC, "%", 0.0, 100.0),
    ("nvml", "gpu.mem_util_percent", "%", 0.0, 100.0),
    ("nvml", "gpu.mem_used_bytes", "B", 1e9, 79e9),
    ("nvml", "gpu.power_w", "W", 60.0, 640.0),
    ("nvml", "gpu.temp_c", "C", 30.0, 50.0),
    ("nvml", "gpu.sm_clock_mhz", "MHz", 800.0, 1200.0),
    ("nvml", "gpu.fan_percent", "%", 0.0, 100.0),
    ("nvml", "gpu.pcie_tx_bytes_s", "B/s", 0.0, 2e10),
    ("nvml", "gpu.energy_j", "J", 0.0, 1e6),
    ("nvml", "gpu.ecc_errors", "1", 0.0, 0.0),
]


def _series() -> list[tuple[str, str, str, str, str, float, float]]:
    """(host, source, metric, unit, labels JSON, base, spread) of every series."""
    series = []
    for host in HOSTS:
        for source, metric, unit, base, spread in HOST_METRICS:
            series.append((host, source, metric, unit, "{}", base, spread))
        for gpu in range(2):
            labels = json.dumps({"gpu": str(gpu), "uuid": f"GPU-{host}-{gpu}"})
            for source, metric, unit, base, spread in GPU_METRICS:
                series.append((host, source, metric, unit, labels, base, spread))
    return series


# --- part 1: ingest ------------------------------------------------------------------------------


def _ingest_rows(n: int) -> list[dict[str, Any]]:
    series = _series()
    rows = []
    for i in range(n):
        host, source, metric, unit, labels, base, spread = series[i % len(series)]
        tick = i // len(series)
        rows.append(
            {
                "run_id": None,
                "host": host,
                "source": source,
                "metric": metric,
                "unit": unit,
                "value": base + spread * ((i * 7919) % 1000) / 1000.0,
                "ts": T0 + timedelta(seconds=tick * EVERY_S),
                "interval_s": float(EVERY_S),
                "labels": json.loads(labels),
            }
        )
    return rows


_RAW_INSERT = (
    "INSERT INTO telemetry (run_id, host, source, metric, unit, value, ts, interval_s, labels) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _raw_sqlite_ingest(path: Path, batches: list[list[dict[str, Any]]]) -> float:
    con = sqlite3.connect(path)
    for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        con.execute(f"PRAGMA {pragma}")
    start = time.perf_counter()
    for batch in batches:
        con.executemany(
            _RAW_INSERT,
            [
                (
                    r["run_id"],
                    r["host"],
                    r["source"],
                    r["metric"],
                    r["unit"],
                    r["value"],
                    r["ts"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    r["interval_s"],
                    json.dumps(r["labels"]),
                )
                for r in batch
            ],
        )
        con.commit()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def _gemmawatch_ingest(engine: Engine, batches: list[list[dict[str, Any]]]) -> float:
    from gemmawatch.collectors.telemetry.sinks import storage_sink

    sink = storage_sink(engine)
    start = time.perf_counter()
    for batch in batches:
        sink(batch)
    return time.perf_counter() - start


def ingest(workdir: Path, n: int, repeats: int, batch: int = 1000) -> tuple[float, float]:
    """Best rows/s of (raw sqlite3, gemmawatch) over ``repeats`` alternating rounds."""
    from gemmawatch.storage import dispose_engines, get_engine

    rows = _ingest_rows(n)
    batches = [rows[i : i + batch] for i in range(0, n, batch)]
    raw_rates, gw_rates = [], []
    for round_ in range(repeats):
        for side in ("raw", "gw"):
            path = workdir / f"ingest-{side}-{round_}.db"
            engine = get_engine(f"sqlite:///{path}")  # same schema and indexes for both sides
            if side == "raw":
                dispose_engines()
                raw_rates.append(n / _raw_sqlite_ingest(path, batches))
            else:
                gw_rates.append(n / _gemmawatch_ingest(engine, batches))
                dispose_engines()
            _remove_db(path)
    return max(raw_rates), max(gw_rates)


# --- part 2: chart queries at scale ---------------------------------------------------------------


def _fill_sqlite(engine: Engine, n_rows: int) -> int:
    """Insert about ``n_rows`` readings in SQL; returns how many. Indexes are rebuilt after the load."""
    from gemmawatch.storage.models import TelemetrySample

    series = _series()
    ticks = math.ceil(n_rows / len(series))
    ticks_per_run = RUN_DAYS * 86400 // EVERY_S
    n_runs = math.ceil(ticks / ticks_per_run)
    table = TelemetrySample.__table__
    with engine.begin() as conn:
        for k in range(n_runs):
            conn.execute(
                text(
                    "INSERT INTO runs (id, kind, status, started_at, host, versions, config) "
                    "VALUES (:id, 'monitor', 'completed', :at, 'node-a', '{}', '{}')"
                ),
                {"id": k + 1, "at": (T0 + timedelta(days=RUN_DAYS * k)).strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
        for index in table.indexes:  # type: ignore[attr-defined]
            index.drop(conn)
        conn.execute(text("CREATE TEMP TABLE series (host, source, metric, unit, labels, base, spread)"))
        conn.execute(text("INSERT INTO series VALUES (:h, :s, :m, :u, :l, :b, :sp)"), [
            {"h": h, "s": s, "m": m, "u": u, "l": lab, "b": b, "sp": sp} for h, s, m, u, lab, b, sp in series
        ])  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO telemetry (run_id, host, source, metric, unit, value, ts, interval_s, labels) "
                "WITH RECURSIVE ticks(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM ticks WHERE i + 1 < :ticks) "
                "SELECT 1 + i / :per_run, s.host, s.source, s.metric, s.unit, "
                "s.base + s.spread * (abs(random()) % 1000) / 1000.0, "
                "strftime('%Y-%m-%d %H:%M:%S.000000', :t0 + i * :every, 'unixepoch'), :every, s.labels "
                "FROM ticks CROSS JOIN series AS s"
            ),
            {"ticks": ticks, "per_run": ticks_per_run, "t0": int(T0.timestamp()), "every": EVERY_S},
        )
        for index in table.indexes:  # type: ignore[attr-defined]
            index.create(conn)
        conn.execute(text("ANALYZE"))
    return ticks * len(series)


def _fill_postgres(engine: Engine, n_rows: int) -> int:
    series = _series()
    ticks = math.ceil(n_rows / len(series))
    ticks_per_run = RUN_DAYS * 86400 // EVERY_S
    n_runs = math.ceil(ticks / ticks_per_run)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE telemetry, telemetry_rollups, telemetry_rollup_state, runs CASCADE"))
        for k in range(n_runs):
            conn.execute(
                text(
                    "INSERT INTO runs (id, kind, status, started_at, host, versions, config) "
                    "VALUES (:id, 'monitor', 'completed', :at, 'node-a', '{}', '{}')"
                ),
                {"id": k + 1, "at": (T0 + timedelta(days=RUN_DAYS * k)).replace(tzinfo=None)},
            )
        conn.execute(
            text("CREATE TEMP TABLE series (host text, source text, metric text, unit text, labels jsonb, "
                 "base float8, spread float8)")
        )  # fmt: skip
        conn.execute(text("INSERT INTO series VALUES (:h, :s, :m, :u, CAST(:l AS jsonb), :b, :sp)"), [
            {"h": h, "s": s, "m": m, "u": u, "l": lab, "b": b, "sp": sp} for h, s, m, u, lab, b, sp in series
        ])  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO telemetry (run_id, host, source, metric, unit, value, ts, interval_s, labels) "
                "SELECT 1 + i / :per_run, s.host, s.source, s.metric, s.unit, s.base + s.spread * random(), "
                "TIMESTAMP '1970-01-01' + (:t0 + i * :every) * INTERVAL '1 second', :every, s.labels "
                "FROM generate_series(0, :ticks - 1) AS i CROSS JOIN series AS s"
            ),
            {"ticks": ticks, "per_run": ticks_per_run, "t0": int(T0.timestamp()), "every": EVERY_S},
        )
        conn.execute(text("ANALYZE"))
    return ticks * len(series)


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``fn`` over ``repeats`` runs after one warm-up; also its last result."""
    result = fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def scale(url: str, n_rows: int, repeats: int, fill: Callable[[Engine, int], int]) -> dict[str, Any]:
    """Fill, time the chart query on raw data, roll up, time it again; returns the figures."""
    from gemmawatch.storage import get_engine, session_scope
    from gemmawatch.storage.queries.telemetry import rollup_telemetry, telemetry_series

    engine = get_engine(url)
    start = time.perf_counter()
    rows = fill(engine, n_rows)
    fill_s = time.perf_counter() - start
    ticks = math.ceil(rows / len(_series()))
    end = T0 + timedelta(seconds=(ticks - 1) * EVERY_S)

    def chart(**filters: Any) -> Callable[[], list[dict[str, Any]]]:
        def run() -> list[dict[str, Any]]:
            with session_scope(engine) as s:
                return telemetry_series(s, metric=METRIC, start=T0, end=end, max_points=1000, **filters)

        return run

    charts = {name: chart(**filters) for name, filters in CHARTS.items()}
    before = {name: _time(run, 1 if rows > 2_000_000 else repeats)[0] for name, run in charts.items()}
    start = time.perf_counter()
    with session_scope(engine) as s:
        counts = rollup_telemetry(s, now=end + timedelta(minutes=2))
    rollup_s = time.perf_counter() - start
    after = {}
    for name, run in charts.items():
        query_s, points = _time(run, repeats)
        after[name] = {"s": query_s, "before_s": before[name], "points": len(points),
                       "resolution": "/".join(sorted({p["resolution"] for p in points}))}  # fmt: skip
    return {
        "rows": rows,
        "days": (end - T0).total_seconds() / 86400,
        "fill_s": fill_s,
        "rollup_s": rollup_s,
        "counts": counts,
        "charts": after,
    }


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _report(dialect: str, result: dict[str, Any]) -> None:
    print(
        f"{dialect} {result['rows']:>10,} rows ({result['days']:.1f} days): fill {result['fill_s']:.1f} s, "
        f"rollup {result['rollup_s']:.1f} s {result['counts']}",
        flush=True,
    )
    for name, chart in result["charts"].items():
        print(
            f"    chart '{name}': {chart['s'] * 1000:.2f} ms ({chart['points']} points, {chart['resolution']}); "
            f"before the rollup {chart['before_s'] * 1000:.1f} ms",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000,10000000", help="Readings per database (comma list).")
    parser.add_argument("--ingest-rows", type=int, default=100_000, help="Rows per ingest round (0: skip).")
    parser.add_argument("--repeats", type=int, default=3, help="Ingest rounds / query repetitions.")
    parser.add_argument("--dir", default=None, help="Work directory for the SQLite files (default: a temp dir).")
    parser.add_argument("--postgres", default=None, help="URL of an EMPTY PostgreSQL database to also test.")
    parser.add_argument("--pg-size", type=int, default=1_000_000, help="Readings for the PostgreSQL run.")
    args = parser.parse_args()
    from gemmawatch.storage import dispose_engines

    workdir = Path(args.dir or tempfile.mkdtemp(prefix="gw-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work dir {workdir}; {os.cpu_count()} CPUs; sqlite {sqlite3.sqlite_version}", flush=True)
    if args.ingest_rows:
        raw, ours = ingest(workdir, args.ingest_rows, args.repeats)
        print(
            f"ingest {args.ingest_rows} rows in batches of 1000: raw sqlite3 executemany {raw:,.0f} rows/s, "
            f"gemmawatch storage_sink {ours:,.0f} rows/s, ratio {ours / raw:.2f} (goal >= 0.5)",
            flush=True,
        )
    results = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        path = workdir / f"scale-{size}.db"
        _remove_db(path)
        results[size] = result = scale(f"sqlite:///{path}", size, args.repeats, _fill_sqlite)
        _report("sqlite", result)
        dispose_engines()
        _remove_db(path)
    if len(results) > 1:
        small, large = min(results), max(results)
        for name in CHARTS:
            ratio = results[large]["charts"][name]["s"] / results[small]["charts"][name]["s"]
            print(f"chart query '{name}' on {large:,} vs {small:,} rows: {ratio:.2f}x (goal <= 3)")
    if args.postgres:
        _report("postgres", scale(args.postgres, args.pg_size, args.repeats, _fill_postgres))
    dispose_engines()
    if not args.dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
