"""Dashboard page render time on a large database vs a 10-run one, in headless Chromium (goal: <= 2x).

    python benchmarks/dashboard_scale.py [--runs 1000] [--samples 1000000] [--telemetry 10000000]
                                         [--db-dir ~/.cache/gemmawatch-bench] [--loads 5] [--pages overview,run]
                                         [--screenshots dashboard/screenshots]

Two SQLite databases with the same shapes per run (see ``dashboard_scale_data.py``: eval, safety, load and
red-team runs on 6 Gemma targets, scores JSON, host and GPU telemetry at 0.1-1 s, monitor probes, alerts,
rollups built by ``rollup_telemetry`` with every raw reading kept): the large one with ``--runs`` runs,
``--samples`` samples and ``--telemetry`` readings in all, the small one with 10 runs and the same per-run
sizes. The large one is kept in ``--db-dir`` (named by its sizes), so a rerun skips generating it; pass
``--regenerate`` to rebuild it (the live Telemetry charts show the last hour, so an old database shows less there).

For each database a dashboard server is started as ``gemmawatch dashboard`` starts it, on a free loopback port,
and every page is opened in headless Chromium: one warm-up load (which also counts the page's Plotly charts and
tables), then ``--loads`` timed loads, each after clearing Streamlit's caches (the "Clear caches" command), so
every load runs its queries. A load is timed from navigation until Streamlit is idle, the page's title, charts
and tables are there, every chart has drawn its SVG and every table its canvas; a load that shows a Streamlit
exception is reported. Printed per page: median ms on the small and the large database, the ratio, and
whether it meets the goal.

``--screenshots DIR`` also saves small PNGs (1200 px wide, 256-colour palette) of the main pages of a freshly
built small database, for the README (``dashboard/screenshots/``; not packaged).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dashboard_scale_data

from gemmawatch.dashboard.launch import streamlit_command, wait_healthy

#: (name, path) of every page, as app.py registers them.
PAGES = [
    ("overview", "/"), ("run", "/run"), ("compare", "/compare"), ("evaluations", "/evaluations"),
    ("performance", "/performance"), ("telemetry", "/telemetry"), ("safety", "/safety"), ("alerts", "/alerts"),
    ("catalog", "/catalog"), ("reports", "/reports"),
]  # fmt: skip
#: Pages saved by --screenshots.
SCREENSHOT_PAGES = ("overview", "compare", "safety", "performance")
SMALL_RUNS = 10
GOAL = 2.0
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 120_000
#: True once the page is drawn: idle, a title, at least the warm-up's charts and tables, each one drawn
#: (tables in a closed expander draw no canvas).
READY_JS = """([charts, frames]) => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('h1') || document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"]')];
  return plots.length >= charts && tables.length >= frames && plots.every(p => p.querySelector('.main-svg'))
    && tables.every(t => t.querySelector('canvas') || !t.checkVisibility());
}"""


def _chromium() -> str:
    found = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if not found:
        sys.exit("Chromium is not installed: run `apt-get install -y chromium`")
    return found


@contextmanager
def _server(db: Path, workdir: Path, *, developer: bool = True) -> Iterator[str]:
    """A dashboard server on ``db``, as ``gemmawatch dashboard`` starts it; stopped on exit.

    ``developer``: with the developer toolbar, whose "Clear caches" command (key c) lets every timed load
    run its queries; screenshots use the normal (viewer) toolbar."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"sqlite:///{db}"
    log_path = workdir / f"streamlit-{db.stem}.log"
    with log_path.open("wb") as log:
        command = [*streamlit_command("127.0.0.1", port, url), *(["--client.toolbarMode", "developer"] * developer)]
        proc = subprocess.Popen(command, env={**os.environ, "GEMMAWATCH_DB": url}, stdout=log,
                                stderr=subprocess.STDOUT, cwd=workdir)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_healthy(base, timeout_s=120, proc=proc):
                sys.exit(f"streamlit did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _settle(page: Any) -> None:
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=TIMEOUT_MS)
    for _ in range(2):  # idle twice, a second apart: a page may rerun once (query params, fragments)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)
        page.wait_for_timeout(1000)
    page.wait_for_function(READY_JS, arg=[0, 0], timeout=TIMEOUT_MS)


def _clear_caches(page: Any) -> None:
    """Streamlit's "Clear caches" command (key ``c``): the next load runs every query again."""
    page.locator("body").press("c")
    page.get_by_role("button", name="Clear caches").click(timeout=10_000)
    page.get_by_role("button", name="Clear caches").wait_for(state="detached", timeout=10_000)


def measure(base: str, pages: list[tuple[str, str]], loads: int) -> dict[str, Any]:
    """Median load ms and the element counts of each page (``exception`` when one was shown)."""
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            for name, path in pages:
                page.goto(base + path, timeout=TIMEOUT_MS)
                _settle(page)
                charts = page.locator(".js-plotly-plot").count()
                frames = page.locator('[data-testid="stDataFrame"]').count()
                times, exceptions = [], page.locator('[data-testid="stException"]').count()
                for _ in range(loads):
                    _clear_caches(page)
                    start = time.perf_counter()
                    page.goto(base + path, timeout=TIMEOUT_MS)
                    page.wait_for_function(READY_JS, arg=[charts, frames], timeout=TIMEOUT_MS, polling=20)
                    times.append((time.perf_counter() - start) * 1000)
                    exceptions += page.locator('[data-testid="stException"]').count()
                results[name] = {"ms": statistics.median(times), "all_ms": times, "charts": charts,
                                 "tables": frames, "exceptions": exceptions}  # fmt: skip
                print(f"  {name:<12} {results[name]['ms']:8.0f} ms  ({charts} charts, {frames} tables"
                      f"{', EXCEPTION' if exceptions else ''})", flush=True)  # fmt: skip
        finally:
            browser.close()
    return results


def screenshots(base: str, folder: Path) -> None:
    """PNGs of the main pages, 1200 px wide, reduced to a 256-colour palette."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            _save_pages(browser.new_page(viewport={"width": 1200, "height": 1000}), base, folder, Image)
        finally:
            browser.close()


def _save_pages(page: Any, base: str, folder: Path, image_module: Any) -> None:
    for name, path in PAGES:
        if name not in SCREENSHOT_PAGES:
            continue
        page.goto(base + path, timeout=TIMEOUT_MS)
        _settle(page)
        target = folder / f"{name}.png"
        page.screenshot(path=str(target))
        with image_module.open(target) as image:
            small = image.convert("RGB").quantize(colors=256, method=image_module.Quantize.MEDIANCUT)
        small.save(target, optimize=True)
        print(f"  screenshot {target} ({target.stat().st_size // 1024} KB)", flush=True)


def _database(folder: Path, runs: int, samples: int, telemetry: int, regenerate: bool) -> Path:
    path = folder / f"dashboard-{runs}r-{samples}s-{telemetry}t.db"
    done = path.with_suffix(".json")
    if done.exists() and path.exists() and not regenerate:
        info = json.loads(done.read_text())
        print(f"reusing {path} (built {info['built_at']}: {info['counts']})", flush=True)
        return path
    done.unlink(missing_ok=True)
    print(f"generating {path}: {runs:,} runs, {samples:,} samples, {telemetry:,} telemetry rows ...", flush=True)
    info = dashboard_scale_data.build(path, runs=runs, samples=samples, telemetry=telemetry)
    timings = ", ".join(f"{k} {v:.1f}" for k, v in info["timings"].items())
    print(f"  {info['counts']}\n  {timings}; {path.stat().st_size / 1e9:.2f} GB", flush=True)
    done.write_text(json.dumps(info))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="Runs in the large database.")
    parser.add_argument("--samples", type=int, default=1_000_000, help="Samples in the large database.")
    parser.add_argument("--telemetry", type=int, default=10_000_000, help="Telemetry rows in the large database.")
    parser.add_argument("--db-dir", default=None, help="Keep the databases here (default: a temp dir, removed).")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild a database kept in --db-dir.")
    parser.add_argument("--loads", type=int, default=5, help="Timed loads per page (after one warm-up).")
    parser.add_argument("--pages", default=None, help="Comma list of page names (default: all).")
    parser.add_argument("--screenshots", default=None, help="Save PNGs of the main pages (small database) here.")
    args = parser.parse_args()
    folder = Path(args.db_dir).expanduser() if args.db_dir else Path(tempfile.mkdtemp(prefix="gw-dash-"))
    folder.mkdir(parents=True, exist_ok=True)
    pages = [p for p in PAGES if not args.pages or p[0] in args.pages.split(",")]
    scale = SMALL_RUNS / args.runs
    small = _database(folder, SMALL_RUNS, round(args.samples * scale), round(args.telemetry * scale), args.regenerate)
    large = _database(folder, args.runs, args.samples, args.telemetry, args.regenerate)
    work = Path(tempfile.mkdtemp(prefix="gw-dash-srv-"))
    results = {}
    for label, db in (("small", small), ("large", large)):
        print(f"{label}: {db.name}, {args.loads} loads per page (median), {os.cpu_count()} CPUs", flush=True)
        with _server(db, work) as base:
            results[label] = measure(base, pages, args.loads)
    if args.screenshots:  # a fresh copy of the small database: its monitor probes are seconds old
        fresh = work / "screenshots.db"
        dashboard_scale_data.build(fresh, runs=SMALL_RUNS, samples=round(args.samples * scale),
                                   telemetry=round(args.telemetry * scale))  # fmt: skip
        with _server(fresh, work, developer=False) as base:
            screenshots(base, Path(args.screenshots))
    print(f"\n{'page':<12} {'small ms':>9} {'large ms':>9} {'ratio':>6}  goal <= {GOAL:g}x")
    worst = 0.0
    for name, _ in pages:
        s_ms, l_ms = results["small"][name]["ms"], results["large"][name]["ms"]
        ratio = l_ms / s_ms
        worst = max(worst, ratio)
        flag = "ok" if ratio <= GOAL else "SLOW"
        if results["small"][name]["exceptions"] or results["large"][name]["exceptions"]:
            flag += ", exception shown"
        print(f"{name:<12} {s_ms:9.0f} {l_ms:9.0f} {ratio:6.2f}  {flag}")
    print(f"worst ratio {worst:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    if not args.db_dir:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
