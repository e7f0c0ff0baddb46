"""Data access of the Gemma catalog page: the stored targets (cached; same contract as ``data``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from gemmawatch.dashboard import data
from gemmawatch.dashboard.data import TTL_S, _guarded, _query
from gemmawatch.storage.queries import targets as target_queries

__all__ = ["targets"]

#: Target fields the catalog shows; ``options`` may hold connection details and is never read here.
FIELDS = ("name", "backend", "model_id", "revision", "dtype", "quantization")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _targets(url: str) -> list[dict[str, Any]]:
    return [{k: t.get(k) for k in FIELDS} for t in _query(url, target_queries.list_targets)]


@_guarded
def targets() -> list[dict[str, Any]]:
    """Every stored target (name, backend, model_id, revision, dtype, quantization), by name."""
    return _targets(data.db_url())
