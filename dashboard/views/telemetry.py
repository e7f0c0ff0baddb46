"""Telemetry page: live host and GPU charts that refresh by themselves, and a run's timeline with its samples.

Streamlit executes this file as the page script (``__name__ == "__main__"``);
``render`` holds the page. Live charts sit in a fragment with ``run_every``, so
only they rerun; each reads its metric at the resolution that fits the range
(raw readings up to 1-day rollups, ``telemetry_data.MAX_POINTS`` points at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import charts_telemetry, data, tables, telemetry_data, ui

__all__ = ["EMPTY_TELEMETRY", "GPU_DEFAULTS", "HOST_DEFAULTS", "RANGES", "REFRESH_S", "render"]

#: Time ranges of the live charts.
RANGES = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "6 h": timedelta(hours=6),
    "24 h": timedelta(hours=24),
    "7 days": timedelta(days=7),
    "30 days": timedelta(days=30),
}
#: Seconds between redraws of the live charts.
REFRESH_S = 10
#: Charts shown first when present (host collector, per-process, GPU collector).
HOST_DEFAULTS = ("cpu.percent", "memory.used_mb", "process.rss_mb", "process.cpu_percent", "host.cpu.percent")
GPU_DEFAULTS = ("gpu.utilization", "gpu.memory_used_mb", "gpu.power_w", "gpu.temperature_c")
#: Shown when a range has no telemetry: the commands that record some.
EMPTY_TELEMETRY = (
    "No telemetry in this time range. `gemmawatch monitor --config monitor.yaml` records host and GPU telemetry "
    "continuously; every `gemmawatch eval` and `gemmawatch bench` records its own run's."
)
_ALL_HOSTS = "all hosts"


def render() -> None:
    """Draw the Telemetry page."""
    st.title("Telemetry")
    ui.database_caption()
    live, timeline = st.tabs(["Live", "Run timeline"])
    with live:
        _live_section()
    with timeline:
        _timeline_section()


def _now() -> datetime:
    # Rounded to the cache TTL, so every session asks the database once per interval.
    ts = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(ts - ts % data.TTL_S, UTC)


def _defaults(available: Sequence[str], preferred: Sequence[str], n: int = 4) -> list[str]:
    chosen = [m for m in preferred if m in available]
    return chosen or list(available[:n])


def _live_section() -> None:
    cols = st.columns([1, 1, 1])
    span = RANGES[cols[0].selectbox("Time range", list(RANGES), index=1, key="telemetry_range")]
    host = cols[1].selectbox("Host", [_ALL_HOSTS, *telemetry_data.hosts()], key="telemetry_host")
    auto = cols[2].toggle(f"Refresh every {REFRESH_S} s", value=True, key="telemetry_auto")
    end = _now()
    catalog = telemetry_data.metrics(end - span, end)
    catalog = catalog[~catalog["metric"].str.startswith("probe.")]
    if catalog.empty:
        st.info(EMPTY_TELEMETRY)
        return
    gpu = catalog[catalog["metric"].str.startswith("gpu.")]
    other = catalog[~catalog["metric"].str.startswith("gpu.")]
    units = dict(zip(catalog["metric"], catalog["unit"], strict=True))
    chosen = {}
    for title, group, preferred in (("Host", other, HOST_DEFAULTS), ("GPU", gpu, GPU_DEFAULTS)):
        if group.empty:
            continue
        names = group["metric"].tolist()
        chosen[title] = st.multiselect(f"{title} metrics", names, default=_defaults(names, preferred),
                                       key=f"telemetry_{title.lower()}_metrics")  # fmt: skip
    if gpu.empty:
        st.caption("No GPU telemetry in this range (no NVIDIA GPU, or NVML not available to the collector).")
    every = REFRESH_S if auto else None
    st.fragment(run_every=every)(_live_charts)(chosen, units, span, None if host == _ALL_HOSTS else host)


def _live_charts(chosen: dict[str, list[str]], units: dict[str, str], span: timedelta, host: str | None) -> None:
    end = _now()
    start = end - span
    for title, metrics in chosen.items():
        if not metrics:
            continue
        st.subheader(title)
        cols = st.columns(2)
        for i, metric in enumerate(metrics):
            frame = telemetry_data.series(metric, start, end, host=host)
            with cols[i % 2]:
                st.plotly_chart(
                    charts_telemetry.series_figure(
                        frame, metric=metric, unit=units.get(metric, ""), x_range=(start, end)
                    ),
                    key=f"telemetry_live_{metric}",
                )
    st.caption(
        f"Up to {end:%Y-%m-%d %H:%M:%S} UTC. Lines: mean per point; band: min-max of the readings behind it "
        "(all devices / processes of a metric together). The title names the resolution read."
    )


def _utc(value: object) -> datetime:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _run_span(summary: dict[str, object], catalog: pd.DataFrame, windows: pd.DataFrame) -> tuple[datetime, datetime]:
    """From the earliest to the latest of: the run's start/finish, its telemetry, its samples' windows."""
    points = [_utc(summary["started_at"])] if summary.get("started_at") else []
    points.append(_utc(summary["finished_at"]) if summary.get("finished_at") else _now())
    if not catalog.empty:
        points += [_utc(catalog["first_ts"].min()), _utc(catalog["last_ts"].max())]
    if not windows.empty:
        first = _utc(windows["started_at"].min())
        points += [first, _utc(windows["started_at"].max()) + timedelta(seconds=float(windows["latency_s"].max()))]
    return min(points), max(points)


def _timeline_section() -> None:
    runs = data.runs()
    if runs.empty:
        ui.empty_state()
        return
    ids = runs["id"].astype(int).tolist()
    labels = {int(r["id"]): f"{tables.run_label(r)} · {r['kind']} · {r['status']}" for r in runs.to_dict("records")}
    wanted = st.query_params.get("run")
    index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in ids else 0
    run_id = st.selectbox("Run", ids, index=index, format_func=labels.__getitem__, key="telemetry_run")
    catalog = data.telemetry_summary(run_id)
    windows = telemetry_data.windows(run_id)
    if catalog.empty and windows.empty:
        st.info("This run stored no telemetry and no timed samples.")
        return
    start, end = _run_span(data.run_summary(run_id) or {}, catalog, windows)
    names = list(dict.fromkeys(catalog["metric"]))  # a metric may come from two sources
    units = dict(zip(catalog["metric"], catalog["unit"], strict=True))
    chosen = st.multiselect("Metrics", names, default=_defaults(names, (*HOST_DEFAULTS, *GPU_DEFAULTS), 3),
                            key=f"telemetry_run_metrics_{run_id}")  # fmt: skip
    series = {m: (telemetry_data.series(m, start, end, run_id=run_id), units[m]) for m in chosen}
    st.plotly_chart(charts_telemetry.run_timeline(series, windows), key="telemetry_timeline")
    total = telemetry_data.window_count(run_id)
    shown = f"the first {len(windows)} of {total}" if total > len(windows) else f"all {total}"
    st.caption(
        f"Bottom row: {shown} timed samples, each from its start to start + latency on its task's row; "
        "hover for the item and its latency. Telemetry above on the same time axis."
    )


if __name__ == "__main__":
    render()
