"""Cached readers of the Overview page (SQL aggregates from ``storage.queries.overview`` and telemetry series).

Same rules as :mod:`gemmawatch.dashboard.data`: URL first in every cache key,
``ttl=data.TTL_S``, failures shown as one line. "Now" is rounded down to
``data.TTL_S`` so concurrent sessions share one query per interval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import data, overview_tables
from gemmawatch.storage.queries import overview as overview_queries
from gemmawatch.storage.queries import targets as target_queries
from gemmawatch.storage.queries import telemetry as telemetry_queries

__all__ = ["HEALTH_WINDOW", "TREND_DAYS", "activity", "now", "probe_trend", "status_counts", "target_health"]

#: Probes older than this are not read for target health (and the uptime covers it).
HEALTH_WINDOW = timedelta(hours=24)
#: Days shown by the KPI sparklines.
TREND_DAYS = 30


def now() -> datetime:
    """The current time rounded down to the cache TTL (aware UTC)."""
    ts = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(ts - ts % data.TTL_S, UTC)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _status_counts(url: str) -> dict[str, int]:
    return data._query(url, overview_queries.run_status_counts)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _activity(url: str, end: datetime, days: int) -> pd.DataFrame:
    since = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return overview_tables.daily_frame(data._query(url, overview_queries.daily_activity, since), end, days)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _target_health(url: str, at: datetime) -> pd.DataFrame:
    probes = data._query(url, overview_queries.target_probes, at - HEALTH_WINDOW)
    targets = [row["name"] for row in data._query(url, target_queries.list_targets)]
    return overview_tables.health_frame(probes, targets, at)


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def _probe_trend(url: str, metric: str, end: datetime, days: int) -> pd.DataFrame:
    rows = data._query(
        url, telemetry_queries.telemetry_series, metric=metric, source=overview_queries.PROBE_SOURCE,
        start=end - timedelta(days=days), end=end, max_points=days,
    )  # fmt: skip
    return pd.DataFrame(rows, columns=["ts", "min", "avg", "max", "count", "resolution"])


@data._guarded
def status_counts() -> dict[str, int]:
    """Runs per status (one grouped count, whatever the number of runs)."""
    return _status_counts(data.db_url())


@data._guarded
def activity(days: int = TREND_DAYS) -> pd.DataFrame:
    """Runs started, failed runs and alerts fired per UTC day over the last ``days`` days, zero-filled."""
    return _activity(data.db_url(), now(), int(days))


@data._guarded
def target_health() -> pd.DataFrame:
    """Each target's status from its last probe (``overview_tables.HEALTH_COLUMNS``), down first."""
    return _target_health(data.db_url(), now())


@data._guarded
def probe_trend(metric: str, days: int = TREND_DAYS) -> pd.DataFrame:
    """Daily (or raw, when few) points of a probe metric over all targets: ts, min, avg, max, count."""
    return _probe_trend(data.db_url(), metric, now(), int(days))
