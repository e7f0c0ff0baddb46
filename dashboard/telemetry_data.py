"""Cached readers of the Telemetry page: metric catalog, resolution-aware series, a run's sample windows.

Same rules as :mod:`gemmawatch.dashboard.data` (URL first in every cache key,
``ttl=data.TTL_S``, one error line on failure). Series come from
``telemetry_series``, which reads raw readings, 1-minute, 1-hour or 1-day
rollups, whichever keeps a range at about ``MAX_POINTS`` points.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import data
from gemmawatch.storage.queries import telemetry as telemetry_queries
from gemmawatch.storage.queries import telemetry_catalog

__all__ = ["MAX_POINTS", "MAX_WINDOWS", "SERIES_COLUMNS", "hosts", "metrics", "series", "window_count", "windows"]

#: Points per chart: enough for a smooth line at dashboard width, cheap to draw.
MAX_POINTS = 600
#: Sample windows drawn on a run's timeline (the first ones by start).
MAX_WINDOWS = 2000
SERIES_COLUMNS = ["ts", "min", "avg", "max", "count", "resolution"]
WINDOW_COLUMNS = ["id", "task", "doc_id", "started_at", "latency_s", "ttft_s", "error"]


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _metrics(url: str, start: datetime, end: datetime, run_id: int | None) -> pd.DataFrame:
    rows = data._query(url, telemetry_catalog.metrics_in_range, start, end, run_id=run_id)
    return pd.DataFrame(rows, columns=["metric", "source", "unit"])


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _hosts(url: str) -> list[str]:
    return data._query(url, telemetry_catalog.run_hosts)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _series(url: str, metric: str, start: datetime, end: datetime, host: str | None, run_id: int | None,
            max_points: int) -> pd.DataFrame:  # fmt: skip
    rows = data._query(url, telemetry_queries.telemetry_series, metric=metric, start=start, end=end, host=host,
                       run_id=run_id, max_points=max_points)  # fmt: skip
    return pd.DataFrame(rows, columns=SERIES_COLUMNS)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _windows(url: str, run_id: int, limit: int) -> pd.DataFrame:
    return pd.DataFrame(data._query(url, telemetry_catalog.sample_windows, run_id, limit=limit), columns=WINDOW_COLUMNS)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _window_count(url: str, run_id: int) -> int:
    return data._query(url, telemetry_catalog.count_sample_windows, run_id)


@data._guarded
def metrics(start: datetime, end: datetime, run_id: int | None = None) -> pd.DataFrame:
    """Metrics with readings in ``[start, end]`` (of one run when given): metric, source, unit."""
    return _metrics(data.db_url(), start, end, None if run_id is None else int(run_id))


@data._guarded
def hosts() -> list[str]:
    """Hosts that ran something."""
    return _hosts(data.db_url())


@data._guarded
def series(
    metric: str, start: datetime, end: datetime, *, host: str | None = None, run_id: int | None = None,
    max_points: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """One metric over ``[start, end]`` at the resolution that fits (``SERIES_COLUMNS``), all devices together.

    At most about ``max_points`` points (default ``MAX_POINTS``).
    """
    points = int(max_points or MAX_POINTS)
    return _series(data.db_url(), metric, start, end, host, None if run_id is None else int(run_id), points)


@data._guarded
def windows(run_id: int, limit: int = MAX_WINDOWS) -> pd.DataFrame:
    """The first ``limit`` timed samples of a run by start (``WINDOW_COLUMNS``)."""
    return _windows(data.db_url(), int(run_id), int(limit))


@data._guarded
def window_count(run_id: int) -> int:
    """How many samples of a run have a time window."""
    return _window_count(data.db_url(), int(run_id))
