"""Small UI pieces shared by the pages (empty state, footers, column formats)."""

from __future__ import annotations

import streamlit as st

from gemmawatch.dashboard import data

__all__ = ["EMPTY_STATE", "RUN_COLUMN_CONFIG", "database_caption", "empty_state"]

#: Shown wherever there is nothing to show yet; it says how to get data in.
EMPTY_STATE = (
    "No runs yet. Fill the database with `gemmawatch demo --no-dashboard` "
    "or `gemmawatch eval --target gemma-3-270m --tasks smoke`."
)

#: Column formats of the runs table (Overview and Compare).
RUN_COLUMN_CONFIG = {
    "id": st.column_config.NumberColumn("run", format="%d", width="small"),
    "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "finished": st.column_config.DatetimeColumn("finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
    "error": st.column_config.TextColumn("error", width="large"),
}


def empty_state() -> None:
    """Tell the reader that the database has no runs and how to add some."""
    st.info(EMPTY_STATE)


def database_caption() -> None:
    """Name the database the page reads (password masked), so a wrong GEMMAWATCH_DB is obvious."""
    st.caption(f"Database: `{data.database_label()}` · data refreshes every {data.TTL_S} s")
