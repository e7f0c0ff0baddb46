"""Table shaping for load-test runs (Performance page): pure pandas, no Streamlit, no database.

A load run stores one set of ``metrics`` rows (task ``load``) per step; the
storage query ``load_steps`` groups them per step, and :func:`steps_frame`
flattens that into one row per step with ``<metric>``, ``<metric>_ci_low``,
``<metric>_ci_high`` and ``<metric>_n`` columns, the shape the charts read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from gemmawatch.dashboard.tables import format_ci

__all__ = [
    "LATENCY_METRICS",
    "LOAD_RUN_COLUMNS",
    "STEP_METRICS",
    "default_load_runs",
    "knee_steps",
    "load_run_label",
    "load_runs_frame",
    "measured_ok",
    "saturation_sentence",
    "step_table",
    "steps_frame",
]

#: Latencies the throughput-latency curve can draw: metric name -> axis/selector label.
LATENCY_METRICS: dict[str, str] = {
    "e2e_p50_s": "E2E p50",
    "e2e_p99_s": "E2E p99",
    "ttft_p50_s": "TTFT p50",
    "ttft_p99_s": "TTFT p99",
    "tpot_p50_s": "TPOT p50",
    "itl_p50_s": "ITL p50",
}

#: Metrics of the per-step table, in display order: metric name -> column label.
STEP_METRICS: dict[str, str] = {
    "request_throughput": "req/s",
    "output_throughput": "output tok/s",
    "ttft_p50_s": "TTFT p50 (s)",
    "ttft_p99_s": "TTFT p99 (s)",
    "tpot_p50_s": "TPOT p50 (s)",
    "e2e_p50_s": "E2E p50 (s)",
    "e2e_p99_s": "E2E p99 (s)",
    "goodput": "goodput (req/s)",
}

#: Columns of :func:`load_runs_frame`.
LOAD_RUN_COLUMNS = ["id", "target", "label", "status", "profile", "started", "run_label"]

# Every metric a step row carries columns for, present in the run or not (NaN then).
_FRAME_METRICS = list(dict.fromkeys([*STEP_METRICS, *LATENCY_METRICS, "error_rate"]))


def load_run_label(run: Mapping[str, Any]) -> str:
    """Legend/selector label of a load run: ``#12 <label>``, or ``#12 <target>`` without a label."""
    name = next((str(v) for v in (run.get("label"), run.get("target")) if _present(v)), "-")
    return f"#{run['id']} {name}"


def _present(value: object) -> bool:
    # A missing label is None in query rows but NaN once it has been through a DataFrame.
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value) != ""


def load_runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """``load_runs`` dicts as a frame (:data:`LOAD_RUN_COLUMNS`), newest first."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=LOAD_RUN_COLUMNS)
    for column in ("target", "label", "profile"):
        if column not in frame.columns:
            frame[column] = None
    out = pd.DataFrame(
        {
            "id": frame["id"].astype(int),
            "target": frame["target"],
            "label": frame["label"],
            "status": frame["status"],
            "profile": frame["profile"],
            "started": pd.to_datetime(frame["started_at"], utc=True),
        }
    )
    out["run_label"] = [
        load_run_label({"id": i, "label": lb, "target": t})
        for i, lb, t in zip(out["id"], out["label"], out["target"], strict=True)
    ]
    return out.sort_values("id", ascending=False).reset_index(drop=True)


def default_load_runs(runs: pd.DataFrame, *, max_runs: int = 4) -> list[int]:
    """The latest finished load run of each target (newest targets first, at most ``max_runs``), by id.

    Completed and partial runs hold measurements; a target with only failed or
    running runs contributes its latest one rather than nothing.
    """
    if runs.empty:
        return []
    ordered = runs.sort_values("id", ascending=False)
    finished = ordered["status"].isin(["completed", "partial"])
    # Finished runs first, so each target's first row is its latest finished run when it has one.
    ranked = pd.concat([ordered[finished], ordered[~finished]])
    latest = ranked.drop_duplicates("target", keep="first")
    newest_targets = latest.sort_values("id", ascending=False).head(max_runs)
    return sorted(int(i) for i in newest_targets["id"])


def steps_frame(steps: Sequence[Mapping[str, Any]], *, run_id: int, run_label: str) -> pd.DataFrame:
    """One row per step of a load run (``load_steps`` dicts), flattened for tables and charts.

    Columns: ``run_id``, ``run_label``, ``step``, ``filter``, ``profile`` (the
    step's label, e.g. ``constant@12/s``), ``kind``, ``concurrency``,
    ``offered_rate``, ``done``, ``failed``, ``load_order`` (position in
    increasing load, see :func:`_load_order`) and, for every metric of
    :data:`STEP_METRICS` and :data:`LATENCY_METRICS` plus ``error_rate``,
    ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high``, ``<metric>_n``.
    """
    rows = []
    for step in steps:
        details: Mapping[str, Any] = step.get("details") or {}
        stored = details.get("profile")
        profile: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
        kind = profile.get("kind")
        open_loop = kind in ("constant", "poisson")
        metrics = step.get("metrics") or {}
        row: dict[str, Any] = {
            "run_id": int(run_id),
            "run_label": run_label,
            "step": int(step.get("step", 0)),
            "filter": step.get("filter"),
            "profile": details.get("label") or kind,
            "kind": kind,
            "concurrency": None if open_loop else (1 if kind == "synchronous" else profile.get("concurrency")),
            "offered_rate": profile.get("rate") if open_loop else None,
        }
        done, failed = _counts(metrics)
        row["done"], row["failed"] = done, failed
        for name in dict.fromkeys([*_FRAME_METRICS, *metrics]):
            entry = metrics.get(name) or {}
            row[name] = _number(entry.get("value"))
            row[f"{name}_ci_low"] = _number(entry.get("ci_low"))
            row[f"{name}_ci_high"] = _number(entry.get("ci_high"))
            row[f"{name}_n"] = entry.get("n")
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["run_id", "run_label", "step", "profile", "done", "failed", "load_order"])
    frame = pd.DataFrame(rows).sort_values("step").reset_index(drop=True)
    for column in ("done", "failed", *(f"{m}_n" for m in _FRAME_METRICS)):
        frame[column] = frame[column].astype("Int64")
    frame["load_order"] = _load_order(frame)
    return frame


def _counts(metrics: Mapping[str, Any]) -> tuple[int | None, int | None]:
    # error_rate = failed / (completed + failed) with n = completed + failed: both counts, exactly.
    rate = metrics.get("error_rate") or {}
    judged, value = rate.get("n"), _number(rate.get("value"))
    if judged is not None and not math.isnan(value):
        failed = round(value * int(judged))
        return int(judged) - failed, failed
    completed = (metrics.get("request_throughput") or {}).get("n")
    return (None if completed is None else int(completed)), None


def _load_order(frame: pd.DataFrame) -> list[int]:
    """Rank of each step in increasing offered load (the order the curve is drawn in).

    As the knee detector orders a sweep: closed-loop-only sweeps by concurrency;
    otherwise open-loop steps by offered rate and closed-loop ones by the rate they
    achieved (a closed loop offers what it achieves). A sweep's step index is not
    its load order: step 1 is the max-throughput step.
    """
    closed_only = frame["offered_rate"].isna().all() and frame["concurrency"].notna().all()
    if closed_only:
        key = frame["concurrency"].astype(float)
    else:
        key = frame["offered_rate"].astype(float).fillna(frame["request_throughput"].astype(float))
    ranked = pd.DataFrame({"key": key.fillna(math.inf), "step": frame["step"]}).sort_values(["key", "step"])
    order = [0] * len(frame)
    for rank, index in enumerate(ranked.index):
        order[index] = rank
    return order


def step_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-step display table: run, step, profile, done, failed, then value, 95 % CI and n of each metric."""
    base = ["run", "step", "profile", "done", "failed"]
    if frame.empty:
        return pd.DataFrame(columns=base)
    out = pd.DataFrame(
        {
            "run": frame["run_label"],
            "step": frame["step"],
            "profile": frame["profile"],
            "done": frame["done"],
            "failed": frame["failed"],
        }
    )
    for metric, label in STEP_METRICS.items():
        if metric not in frame.columns or frame[metric].isna().all():
            continue  # e.g. goodput: only stored when an SLO was given
        out[label] = frame[metric].astype(float)
        bounds = zip(frame[f"{metric}_ci_low"], frame[f"{metric}_ci_high"], strict=True)
        out[f"{label} 95% CI"] = [format_ci(lo, hi) for lo, hi in bounds]
        out[f"{label} n"] = frame[f"{metric}_n"]
    return out.reset_index(drop=True)


def measured_ok(timings: pd.DataFrame) -> pd.DataFrame:
    """The requests latency statistics are computed from: successful and inside the measurement window."""
    if timings.empty:
        return timings
    keep = pd.Series(True, index=timings.index)
    if "phase" in timings.columns:
        keep &= timings["phase"] == "measure"
    if "ok" in timings.columns:
        keep &= timings["ok"].astype(bool)
    return timings[keep]


def knee_steps(saturation: Mapping[str, Mapping[str, Any] | None]) -> dict[str, int]:
    """``{run label: knee step}`` for the runs whose sweep found a knee."""
    knees = {}
    for label, sat in saturation.items():
        if isinstance(sat, Mapping) and sat.get("step") is not None:
            knees[label] = int(sat["step"])
    return knees


def saturation_sentence(label: str, saturation: Mapping[str, Any] | None, steps: pd.DataFrame) -> str:
    """One plain sentence on where ``label``'s run saturated (or why that is not known)."""
    if isinstance(saturation, Mapping) and saturation.get("step") is not None:
        step = int(saturation["step"])
        match = steps[steps["step"] == step] if "step" in steps.columns else steps.iloc[0:0]
        profile = f" ({match['profile'].iloc[0]})" if not match.empty and match["profile"].iloc[0] else ""
        peak = _number(saturation.get("max_throughput"))
        peak_text = "" if math.isnan(peak) else f" Highest throughput of any step: {peak:.3g} req/s."
        return f"{label}: knee at step {step}{profile}.{peak_text} {saturation.get('reason') or ''}".strip()
    if len(steps) >= 3:
        return (
            f"{label}: no knee found: no step showed throughput levelling off while latency or "
            "queueing climbed (the sweep may not have reached saturation)."
        )
    if len(steps) == 2:
        return f"{label}: two steps cannot tell a knee from noise; sweep with --steps 3 or more."
    return f"{label}: one load level, no sweep (a sweep, --profile sweep, finds the knee)."


def _number(value: object) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
