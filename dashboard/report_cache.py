"""Cached reader of the Reports page (same contract as :mod:`gemmawatch.dashboard.data`).

The report's data (:func:`~gemmawatch.dashboard.report_data.collect_report`: runs, metrics,
paired comparisons, firing alerts) is read once per database URL and run selection and
reused for ``TTL_S`` seconds; turning it into HTML or PDF happens only when a download
button is clicked (pure functions, no database).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from gemmawatch.dashboard import data, report_data
from gemmawatch.dashboard.data import TTL_S, _guarded, _query

__all__ = ["report"]


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _report(url: str, run_ids: tuple[int, ...]) -> report_data.ReportData:
    return _query(url, report_data.collect_report, list(run_ids))


@_guarded
def report(run_ids: Sequence[int]) -> report_data.ReportData:
    """What the report of ``run_ids`` shows (the first run's variant is the baseline)."""
    return _report(data.db_url(), tuple(int(r) for r in run_ids))
