"""Data access of the Evaluations page: cached readers over ``storage.queries.sample_browse``.

The same contract as :mod:`gemmawatch.dashboard.data` (kept apart because that module is at
its size limit): pages call the public functions here; each reader is an
``@st.cache_data(ttl=data.TTL_S)`` function keyed by the database URL; a database failure
becomes one error line (``data._guarded``); no SQL.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import data, eval_tables
from gemmawatch.dashboard.data import TTL_S, _guarded, _query
from gemmawatch.storage.queries import sample_browse
from gemmawatch.storage.queries import samples as sample_queries

__all__ = ["KEY_SCAN", "flips", "sample_count", "sample_page", "score_keys", "task_summary"]

#: Samples scanned for the score names offered by the filter (the first of the run, by task and doc id).
KEY_SCAN = 500


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _task_summary(url: str, run_id: int) -> pd.DataFrame:
    return pd.DataFrame(_query(url, sample_browse.task_summary, run_id))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _score_keys(url: str, run_id: int, task: str | None) -> list[str]:
    return eval_tables.score_keys(_query(url, sample_queries.list_samples, run_id, task=task, limit=KEY_SCAN))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _sample_page(
    url: str, run_id: int, filters: tuple[str | None, str | None, str, str | None, float], offset: int, limit: int
) -> pd.DataFrame:
    task, search, outcome, key, threshold = filters
    rows = _query(
        url, sample_browse.filtered_samples, run_id, task=task, search=search, outcome=outcome,
        score_key=key, threshold=threshold, offset=offset, limit=limit,
    )  # fmt: skip
    return eval_tables.samples_frame(rows)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _sample_count(url: str, run_id: int, filters: tuple[str | None, str | None, str, str | None, float]) -> int:
    task, search, outcome, key, threshold = filters
    return _query(
        url, sample_browse.count_filtered_samples, run_id, task=task, search=search, outcome=outcome,
        score_key=key, threshold=threshold,
    )  # fmt: skip


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _flips(url: str, base_id: int, cand_id: int, task: str | None, key: str | None, limit: int) -> pd.DataFrame:
    pairs = _query(url, sample_browse.paired_samples, base_id, cand_id, task=task, limit=limit)
    return eval_tables.flips_frame(pairs, key=key)


Filters = tuple[str | None, str | None, str, str | None, float]


def _filters(task: str | None, search: str | None, outcome: str, key: str | None, threshold: float) -> Filters:
    return (task or None, search or None, outcome, key or None, float(threshold))


@_guarded
def task_summary(run_id: int) -> pd.DataFrame:
    """Per task of a run: n, errors, mean/max latency, mean TTFT and output tokens (aggregated in SQL)."""
    return _task_summary(data.db_url(), int(run_id))


@_guarded
def score_keys(run_id: int, task: str | None = None) -> list[str]:
    """Numeric score names of a run's samples (of ``task``), correctness scores first."""
    return _score_keys(data.db_url(), int(run_id), task or None)


@_guarded
def sample_page(
    run_id: int,
    *,
    task: str | None = None,
    search: str | None = None,
    outcome: str = "all",
    score_key: str | None = None,
    threshold: float = 0.5,
    offset: int = 0,
    limit: int = 50,
) -> pd.DataFrame:
    """One page of samples (``eval_tables.SAMPLE_COLUMNS``) filtered in SQL; see ``sample_browse.filtered_samples``."""
    filters = _filters(task, search, outcome, score_key, threshold)
    return _sample_page(data.db_url(), int(run_id), filters, int(offset), int(limit))


@_guarded
def sample_count(
    run_id: int,
    *,
    task: str | None = None,
    search: str | None = None,
    outcome: str = "all",
    score_key: str | None = None,
    threshold: float = 0.5,
) -> int:
    """How many samples :func:`sample_page` pages through with the same filters."""
    return _sample_count(data.db_url(), int(run_id), _filters(task, search, outcome, score_key, threshold))


@_guarded
def flips(
    base_id: int, cand_id: int, *, task: str | None = None, key: str | None = None, limit: int = sample_browse.MAX_PAIRS
) -> pd.DataFrame:
    """Per-item diff of two runs paired by task and doc id (``eval_tables.flips_frame``), worst news first."""
    return _flips(data.db_url(), int(base_id), int(cand_id), task or None, key or None, int(limit))
