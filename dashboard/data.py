"""All data access of the dashboard: cached wrappers over ``gemmawatch.storage.queries``.

Pages call only the public functions here. Each one

* reads the database URL from ``GEMMAWATCH_DB`` (``resolve_url``) on every
  call and passes it to the cached function, so the URL is part of the cache
  key and a changed URL never serves another database's rows;
* goes through ``@st.cache_data(ttl=5)``: a page rerun on every widget click
  costs no query, yet a running evaluation shows up within seconds;
* turns a database failure into one ``st.error`` line and stops the page,
  instead of a traceback (this is the dashboard's error boundary, like
  ``cli/main.py`` is the CLI's).

No SQL lives here: only calls of the storage query functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy.exc
import streamlit as st
from sqlalchemy import Engine

from gemmawatch import compare as compare_module
from gemmawatch.dashboard import auth, load_tables, tables
from gemmawatch.errors import DatabaseError, GemmawatchError, UserError, one_line
from gemmawatch.storage import engine as storage_engine
from gemmawatch.storage.queries import alerts as alert_queries
from gemmawatch.storage.queries import load as load_queries
from gemmawatch.storage.queries import metrics as metric_queries
from gemmawatch.storage.queries import runs as run_queries
from gemmawatch.storage.queries import samples as sample_queries
from gemmawatch.storage.queries import telemetry as telemetry_queries

__all__ = [
    "TTL_S",
    "alerts",
    "comparison",
    "database_label",
    "db_url",
    "load_runs",
    "load_steps",
    "metrics",
    "parity_disagreements",
    "rate_sample",
    "request_timings",
    "run_saturation",
    "run_summary",
    "runs",
    "sample_count",
    "sample_tasks",
    "samples",
    "telemetry",
    "telemetry_summary",
    "write",
]

#: Seconds a query result is reused before the database is asked again.
TTL_S = 5

#: Most items of a parity run scanned for disagreements.
PARITY_MAX_ITEMS = 10_000

#: Most telemetry points drawn per metric series; longer series are thinned evenly.
MAX_POINTS_PER_SERIES = 3000

#: Most requests of one load run read for latency distributions (thinned evenly by the database).
MAX_REQUEST_TIMINGS = 20_000

P = ParamSpec("P")
R = TypeVar("R")


def db_url() -> str:
    """The database URL: env ``GEMMAWATCH_DB`` or the per-user SQLite default.

    Every reader asks for it first, so it is also where the authentication
    gate is enforced a second time: a page script run any other way than
    through ``app.py`` still shows no data.
    """
    auth.gate()
    return storage_engine.resolve_url(None)


def database_label() -> str:
    """The database URL with any password masked, for the page caption."""
    return storage_engine.mask_url(db_url())


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    # One engine (connection pool) per URL for the whole server process.
    return storage_engine.get_engine(url)


def _query(url: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    with storage_engine.session_scope(_engine(url)) as session:
        return fn(session, *args, **kwargs)


def _guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Show a database failure as one error line and stop the page (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except GemmawatchError as exc:
            st.error(one_line(str(exc)))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            # Storage converts the errors it expects; anything else still must not
            # become a traceback with the URL and SQL in it.
            orig = getattr(exc, "orig", None) or exc
            st.error(
                one_line(
                    f"Database error: {type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}. "
                    "Fix: check GEMMAWATCH_DB and run `gemmawatch db upgrade`"
                )
            )
        st.stop()
        raise AssertionError("st.stop() returned")  # pragma: no cover - st.stop raises

    return wrapper


def write(fn: Callable[..., R], *args: Any, clear: Callable[[], None] = lambda: None, **kwargs: Any) -> R:
    """Run ``fn(session, *args, **kwargs)`` in one transaction, then ``clear`` the caches it makes stale.

    A database failure is raised as one-line :class:`DatabaseError` for the page to show
    (the caches are cleared either way: a half-known state is re-read, never guessed).
    """
    try:
        with storage_engine.session_scope(_engine(db_url())) as session:
            return fn(session, *args, **kwargs)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = str(orig).splitlines()[0] if str(orig) else ""
        raise DatabaseError(
            one_line(f"Database error: {type(orig).__name__}: {first}. Fix: check GEMMAWATCH_DB")
        ) from exc
    finally:
        clear()


def rate_sample(sample_id: int, rating: int, comment: str | None = None) -> dict[str, Any]:
    """Record a user satisfaction rating (1-5) on a sample (``storage.queries.samples.rate_sample``)."""
    return write(sample_queries.rate_sample, int(sample_id), int(rating), comment, clear=_samples.clear)


# --- cached readers (URL first: part of the cache key) -------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _runs(url: str, limit: int) -> pd.DataFrame:
    return tables.runs_frame(_query(url, run_queries.list_runs, limit=limit))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _run_summary(url: str, run_id: int) -> dict[str, Any] | None:
    return _query(url, run_queries.run_summary, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _metrics(url: str, run_ids: tuple[int, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(_query(url, metric_queries.metrics_for_runs, list(run_ids)))
    if not frame.empty:
        frame["run_label"] = [
            tables.run_label({"id": r, "target": t}) for r, t in zip(frame["run_id"], frame["target"], strict=True)
        ]
    return frame


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _samples(url: str, run_id: int, task: str | None, search: str | None, offset: int, limit: int) -> pd.DataFrame:
    rows = _query(url, sample_queries.list_samples, run_id, task=task, search=search, offset=offset, limit=limit)
    return pd.DataFrame(rows)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _sample_count(url: str, run_id: int, task: str | None, search: str | None) -> int:
    return _query(url, sample_queries.count_samples, run_id, task, search)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _sample_tasks(url: str, run_id: int) -> list[str]:
    return _query(url, sample_queries.tasks_for_run, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _parity_disagreements(url: str, run_id: int) -> pd.DataFrame:
    # A parity run holds one sample per smoke item (80 at most), so filtering here is cheap.
    rows = _query(url, sample_queries.list_samples, run_id, offset=0, limit=PARITY_MAX_ITEMS)
    return tables.parity_disagreements_frame(rows)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _telemetry(url: str, run_id: int) -> pd.DataFrame:
    return thin(pd.DataFrame(_query(url, telemetry_queries.telemetry_for_run, run_id)), MAX_POINTS_PER_SERIES)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _telemetry_summary(url: str, run_id: int) -> pd.DataFrame:
    return pd.DataFrame(_query(url, telemetry_queries.telemetry_summary, run_id))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alerts(url: str, state: str | None) -> pd.DataFrame:
    return pd.DataFrame(_query(url, alert_queries.list_alerts, state=state))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _comparison(url: str, base_id: int, cand_id: int) -> dict[str, Any]:
    try:
        return _query(url, compare_module.compare_runs, base_id, cand_id).as_dict()
    except UserError as exc:  # runs that cannot be paired: the section says why, the page goes on
        return {"error": one_line(str(exc))}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _load_runs(url: str, limit: int) -> pd.DataFrame:
    return load_tables.load_runs_frame(_query(url, load_queries.load_runs, limit=limit))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _load_steps(url: str, run_id: int, run_label: str) -> pd.DataFrame:
    return load_tables.steps_frame(_query(url, load_queries.load_steps, run_id), run_id=run_id, run_label=run_label)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _request_timings(url: str, run_id: int, limit: int) -> pd.DataFrame:
    columns = ["step", "seq", "phase", "ok", "ttft_s", "e2e_s", "tpot_s", "output_tokens", "error_class"]
    rows = _query(url, load_queries.request_timings, run_id, limit=limit)
    return pd.DataFrame(rows, columns=columns).assign(run_id=run_id)


def thin(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Keep at most ``max_points`` evenly spaced rows per metric series (a browser draws ~1e4 points well)."""
    if frame.empty or "metric" not in frame.columns:
        return frame
    parts = []
    for _, part in frame.groupby("metric", sort=False):
        step = -(-len(part) // max_points)  # ceil division
        parts.append(part.iloc[::step] if step > 1 else part)
    return pd.concat(parts).reset_index(drop=True)


# --- public API used by the pages -----------------------------------------------------------------


@_guarded
def runs(limit: int = 500) -> pd.DataFrame:
    """Latest runs, newest first, as a display frame (columns ``tables.RUN_COLUMNS``)."""
    return _runs(db_url(), limit)


@_guarded
def run_summary(run_id: int) -> dict[str, Any] | None:
    """The ``run_summary`` dict of one run (metrics included), or None when it does not exist."""
    return _run_summary(db_url(), int(run_id))


@_guarded
def metrics(run_ids: Sequence[int]) -> pd.DataFrame:
    """Metric rows of the given runs, plus ``run_label`` (``#id target``) for legends."""
    return _metrics(db_url(), tuple(int(r) for r in run_ids))


@_guarded
def samples(
    run_id: int, *, task: str | None = None, search: str | None = None, offset: int = 0, limit: int = 50
) -> pd.DataFrame:
    """One page of a run's samples, filtered by task and a text search over prompt/output."""
    return _samples(db_url(), int(run_id), task or None, search or None, int(offset), int(limit))


@_guarded
def sample_count(run_id: int, task: str | None = None, search: str | None = None) -> int:
    """Number of samples of a run that ``samples`` pages through with the same filters."""
    return _sample_count(db_url(), int(run_id), task or None, search or None)


@_guarded
def sample_tasks(run_id: int) -> list[str]:
    """Tasks that have samples in a run."""
    return _sample_tasks(db_url(), int(run_id))


@_guarded
def parity_disagreements(run_id: int) -> pd.DataFrame:
    """Items of a ``parity`` run where the two targets chose different answers (``tables.PARITY_COLUMNS``)."""
    return _parity_disagreements(db_url(), int(run_id))


@_guarded
def telemetry(run_id: int) -> pd.DataFrame:
    """Telemetry rows of a run (``ts``, ``metric``, ``unit``, ``value``, ``source``, ...), thinned for drawing."""
    return _telemetry(db_url(), int(run_id))


@_guarded
def telemetry_summary(run_id: int) -> pd.DataFrame:
    """Per source/metric/unit: n, min, avg, max and sampling interval of a run's telemetry."""
    return _telemetry_summary(db_url(), int(run_id))


@_guarded
def alerts(state: str | None = None) -> pd.DataFrame:
    """Alerts, optionally only those in ``state`` ("firing" or "resolved")."""
    return _alerts(db_url(), state)


@_guarded
def comparison(base_id: int, cand_id: int) -> dict[str, Any]:
    """``gemmawatch compare BASE CAND`` of two stored runs (``Comparison.as_dict()``: paired metrics
    with deltas and adjusted p-values, per-prompt diff), or ``{"error": line}`` when they cannot be paired."""
    return _comparison(db_url(), int(base_id), int(cand_id))


@_guarded
def load_runs(limit: int = 200) -> pd.DataFrame:
    """Load-test runs, newest first (``load_tables.LOAD_RUN_COLUMNS``, with ``run_label`` for legends)."""
    return _load_runs(db_url(), int(limit))


@_guarded
def load_steps(run_id: int, run_label: str | None = None) -> pd.DataFrame:
    """One row per step of a load run with its headline metrics, CIs and n (``load_tables.steps_frame``).

    ``run_label`` names the run in legends (``#id`` when not given).
    """
    return _load_steps(db_url(), int(run_id), run_label or f"#{int(run_id)}")


@_guarded
def request_timings(run_id: int, limit: int = MAX_REQUEST_TIMINGS) -> pd.DataFrame:
    """Per-request TTFT, E2E and TPOT of a load run (plus step, phase, ok), at most about ``limit`` rows."""
    return _request_timings(db_url(), int(run_id), int(limit))


def run_saturation(run_id: int) -> dict[str, Any] | None:
    """The knee a load sweep stored in its config (step, reason, max_throughput, points), else None."""
    summary = run_summary(run_id)
    config = (summary or {}).get("config") or {}
    saturation = config.get("saturation") if isinstance(config, dict) else None
    return saturation if isinstance(saturation, dict) else None
