"""Small UI pieces shared by the pages (empty state, footers, column formats)."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from gemmawatch.dashboard import data, exports

__all__ = ["EMPTY_STATE", "RUN_COLUMN_CONFIG", "database_caption", "empty_state", "export_buttons"]

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


def export_buttons(frame: pd.DataFrame, name: str) -> None:
    """CSV, JSON and Parquet download buttons for a table shown on the page (``exports.to_bytes``).

    ``name`` is the file name stem and part of the widget keys, so it must be unique on the page.
    The file is built only when a button is clicked, and clicking does not rerun the page.
    """
    formats = [f for f in exports.FORMATS if f != "parquet" or exports.parquet_available()]
    row = st.container(horizontal=True, gap="small")
    for fmt in formats:
        row.download_button(
            fmt.upper(),
            data=functools.partial(exports.to_bytes, frame, fmt),
            file_name=exports.file_name(name, fmt),
            mime=exports.MIME_TYPES[fmt],
            key=f"export_{name}_{fmt}",
            help=f"Download this table as {fmt.upper()}",
            on_click="ignore",
            icon=":material/download:",
        )
