"""Table shaping: pure pandas transforms from query rows to display frames.

Kept apart from ``data.py`` (which talks to storage and Streamlit's caches)
so the reshaping that decides what a reader sees, such as the side-by-side
comparison and its deltas, is unit-tested without an app or a database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from gemmawatch.dashboard.charts import metric_key

__all__ = [
    "LATENCY_TASK",
    "PARITY_COLUMNS",
    "RUN_COLUMNS",
    "compare_table",
    "default_compare_runs",
    "format_ci",
    "metrics_table",
    "parity_disagreements_frame",
    "run_label",
    "runs_frame",
    "split_latency",
]

#: Task name of the latency probe's metrics (seconds, tokens/s): charted apart from scores.
LATENCY_TASK = "latency"

#: Columns of the runs table, in display order.
RUN_COLUMNS = ["id", "kind", "target", "label", "status", "started", "finished", "duration_s", "error"]


def run_label(run: Mapping[Any, Any]) -> str:
    """Short, unique label of a run for selectors and legends: ``#12 gemma-3-270m``."""
    target = run.get("target") or "-"
    return f"#{run['id']} {target}"


def runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Runs (``list_runs`` dicts) as a display frame with a duration column, newest first."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    for column in ("label", "finished_at", "error", "target"):
        if column not in frame.columns:
            frame[column] = None
    started = pd.to_datetime(frame["started_at"], utc=True)
    finished = pd.to_datetime(frame["finished_at"], utc=True)
    out = pd.DataFrame(
        {
            "id": frame["id"].astype(int),
            "kind": frame["kind"],
            "target": frame["target"],
            "label": frame["label"],
            "status": frame["status"],
            "started": started,
            "finished": finished,
            "duration_s": (finished - started).dt.total_seconds().round(1),
            "error": frame["error"],
        }
    )
    return out.sort_values("id", ascending=False).reset_index(drop=True)


def format_ci(low: object, high: object, *, digits: int = 3) -> str:
    """``[low, high]`` rounded for display, or an empty string when a bound is missing."""
    try:
        lo, hi = float(low), float(high)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # None, pd.NA
        return ""
    if math.isnan(lo) or math.isnan(hi):
        return ""
    return f"[{lo:.{digits}g}, {hi:.{digits}g}]"


def metrics_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Metric rows as a display frame: value, stderr, 95 % CI, n and who computed it."""
    frame = pd.DataFrame(list(rows))
    columns = ["task", "metric", "filter", "value", "stderr", "95% CI", "n", "producer", "task_version"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for column in ("filter", "stderr", "ci_low", "ci_high", "producer", "producer_version", "task_version"):
        if column not in frame.columns:
            frame[column] = None
    frame["95% CI"] = [format_ci(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)]
    # One "producer" column reads better than two half-empty ones.
    frame["producer"] = [
        f"{p} {v}".strip() if v else str(p or "")
        for p, v in zip(frame["producer"], frame["producer_version"], strict=True)
    ]
    return frame[columns].sort_values(["task", "metric", "filter"]).reset_index(drop=True)


def compare_table(metrics: pd.DataFrame, run_ids: Sequence[int], labels: Mapping[int, str]) -> pd.DataFrame:
    """Side-by-side metrics of several runs, with the delta of each run against the first.

    One row per ``task`` / metric (with its filter), and for every run in
    ``run_ids`` (in that order) the columns ``<label> value``, ``<label> Δ``
    (every run after the first: its value minus the first run's),
    ``<label> 95% CI`` and ``<label> n``. A metric that a run lacks stays empty rather than
    being dropped, so a missing task is visible.
    """
    if metrics.empty or not run_ids:
        return pd.DataFrame(columns=["task", "metric"])
    data = metrics[metrics["run_id"].isin(list(run_ids))].copy()
    filters = data["filter"].tolist() if "filter" in data.columns else ["none"] * len(data)
    data["metric_key"] = [metric_key(m, f) for m, f in zip(data["metric"].tolist(), filters, strict=True)]
    keys = data[["task", "metric_key"]].drop_duplicates().sort_values(["task", "metric_key"])
    out = keys.rename(columns={"metric_key": "metric"}).reset_index(drop=True)
    base_values: pd.Series | None = None
    for run_id in run_ids:
        label = labels.get(run_id, f"#{run_id}")
        part = data[data["run_id"] == run_id].drop_duplicates(["task", "metric_key"], keep="last")
        part = part.drop(columns=["metric"]).rename(columns={"metric_key": "metric"})
        merged = out[["task", "metric"]].merge(part, on=["task", "metric"], how="left")
        values = merged["value"].astype(float)
        out[f"{label} value"] = values
        if base_values is None:
            base_values = values
        else:
            # Next to the value it qualifies, so the comparison reads left to right.
            out[f"{label} Δ"] = values - base_values
        bounds = zip(_column(merged, "ci_low"), _column(merged, "ci_high"), strict=True)
        out[f"{label} 95% CI"] = [format_ci(lo, hi) for lo, hi in bounds]
        out[f"{label} n"] = merged["n"].astype("Int64")
    return out


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def default_compare_runs(runs: pd.DataFrame) -> list[int]:
    """The latest completed run of each target, oldest target first (the usual comparison)."""
    if runs.empty:
        return []
    done = runs[runs["status"] == "completed"].sort_values("id")
    latest = done.groupby("target", dropna=False, sort=False)["id"].max()
    return sorted(int(i) for i in latest.tolist())


def split_latency(metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scores, latency)``: quality metrics and the latency probe's metrics, charted separately."""
    if metrics.empty or "task" not in metrics.columns:
        return metrics, metrics.iloc[0:0]
    is_latency = metrics["task"] == LATENCY_TASK
    return metrics[~is_latency], metrics[is_latency]


#: Columns of the disagreeing-items table of a parity run.
PARITY_COLUMNS = ["task", "doc_id", "item", "prompt", "answer_a", "answer_b", "gold"]


def parity_disagreements_frame(samples: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The samples of a parity run where A and B disagree (``scores["agree"] == 0``), as plain text columns."""
    rows = []
    for sample in samples:
        scores = sample.get("scores") or {}
        if scores.get("agree", 1) != 0:
            continue
        rows.append(
            {
                "task": sample.get("task"),
                "doc_id": sample.get("doc_id"),
                "item": scores.get("item_id"),
                "prompt": sample.get("prompt"),
                "answer_a": scores.get("answer_a"),
                "answer_b": scores.get("answer_b"),
                "gold": sample.get("target"),
            }
        )
    return pd.DataFrame(rows, columns=PARITY_COLUMNS)
