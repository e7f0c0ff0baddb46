"""Streamlit entry script of the gemmawatch dashboard (``streamlit run .../app.py``).

``streamlit run`` puts this file's folder on ``sys.path``, so every import
here and in the pages is absolute (``gemmawatch.dashboard...``): a bare
``import data`` would work by accident and load a second copy of the module.
The database comes from ``GEMMAWATCH_DB`` (see ``data.db_url``); who may see it, from
``auth`` (loopback, or a password / OIDC login set in ``.streamlit/secrets.toml``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gemmawatch.dashboard import auth

__all__ = ["PAGES_DIR", "main"]

#: Page scripts; Streamlit executes each as ``__main__``, which calls its ``render()``. Not named ``pages/``:
#: beside the entry script that name switches on Streamlit's legacy multipage routing, which runs a page on a
#: fresh server's first deep link without this script (and so without its authentication gate).
PAGES_DIR = Path(__file__).resolve().parent / "views"


def main() -> None:
    """Configure the app and run the selected page."""
    st.set_page_config(page_title="gemmawatch", layout="wide")
    pages = [
        st.Page(PAGES_DIR / "overview.py", title="Overview", url_path="overview", default=True),
        st.Page(PAGES_DIR / "run.py", title="Run", url_path="run"),
        st.Page(PAGES_DIR / "compare.py", title="Compare", url_path="compare"),
        st.Page(PAGES_DIR / "evaluations.py", title="Evaluations", url_path="evaluations"),
        st.Page(PAGES_DIR / "performance.py", title="Performance", url_path="performance"),
        st.Page(PAGES_DIR / "telemetry.py", title="Telemetry", url_path="telemetry"),
        st.Page(PAGES_DIR / "safety.py", title="Safety", url_path="safety"),
        st.Page(PAGES_DIR / "alerts.py", title="Alerts", url_path="alerts"),
        st.Page(PAGES_DIR / "catalog.py", title="Gemma catalog", url_path="catalog"),
        st.Page(PAGES_DIR / "reports.py", title="Reports", url_path="reports"),
    ]
    # Navigation is declared first, hidden until the session may see it; the gate stops the script
    # before any page draws (data.db_url gates again, for pages Streamlit runs without this script).
    page = st.navigation(pages, position="sidebar" if auth.authorized() else "hidden")
    auth.gate()
    page.run()


if __name__ == "__main__":
    main()
