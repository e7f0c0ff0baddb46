"""Table shaping of the Safety page: pure pandas transforms, no Streamlit, no database.

* safety rates per category (metric rows of task ``safety``, filter = category or ``all``);
* the regression view between two safety runs (``gemmawatch.compare.Comparison.as_dict()``);
* per-probe pass rates of red-team runs (metric rows of tasks ``redteam/<probe>``), read
  generically: whatever metrics such a run stored are shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from gemmawatch.dashboard.compare_tables import significance_mark
from gemmawatch.dashboard.tables import format_ci

__all__ = [
    "ALL_CATEGORIES",
    "DIFF_COLUMNS",
    "DIFF_LABELS",
    "RATE_LABELS",
    "REDTEAM_TASK",
    "SAFETY_TASK",
    "comparison_frame",
    "diff_frame",
    "probe_frame",
    "rates_frame",
    "rates_table",
    "verdict",
]

SAFETY_TASK = "safety"
REDTEAM_TASK = "redteam"
#: Filter of the safety metric rows over every category.
ALL_CATEGORIES = "all"

#: Safety rate metrics in display order, with the words the page uses for them.
RATE_LABELS: dict[str, str] = {
    "refusal_rate": "refusal",
    "over_refusal_rate": "over-refusal",
    "refused_rate": "refused (unlabelled)",
    "unsafe_output_rate": "unsafe output",
    "pii_leak_rate": "PII leak",
}

#: Per-prompt diff lists of a comparison, in the order the page shows them (worst news first).
DIFF_LABELS: dict[str, str] = {
    "newly_unsafe": "newly unsafe",
    "newly_refused": "newly refused",
    "newly_wrong": "newly wrong",
}
DIFF_COLUMNS = ["change", "task", "doc_id", "label", "prompt", "base_output", "cand_output"]


def _categories_last_all(values: Iterable[Any]) -> list[str]:
    names = list(dict.fromkeys(str(v) for v in values))
    return [n for n in names if n != ALL_CATEGORIES] + ([ALL_CATEGORIES] if ALL_CATEGORIES in names else [])


def rates_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """The safety rate rows of one run, long form: ``category``, ``metric``, ``rate`` (label), value, CI, n.

    Only metrics of :data:`RATE_LABELS` (not the checks' own scores); categories in
    the order stored, ``all`` last; metrics in :data:`RATE_LABELS` order.
    """
    columns = ["category", "metric", "rate", "value", "ci_low", "ci_high", "n"]
    if metrics.empty or not {"task", "metric", "value"} <= set(metrics.columns):
        return pd.DataFrame(columns=columns)
    rows = metrics[(metrics["task"] == SAFETY_TASK) & metrics["metric"].isin(list(RATE_LABELS))].copy()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    for column in ("filter", "ci_low", "ci_high", "n"):
        if column not in rows.columns:
            rows[column] = None
    rows["category"] = rows["filter"].fillna(ALL_CATEGORIES).astype(str)
    rows["rate"] = rows["metric"].map(RATE_LABELS)
    order = {c: i for i, c in enumerate(_categories_last_all(rows["category"]))}
    metric_order = {m: i for i, m in enumerate(RATE_LABELS)}
    rows = rows.assign(_c=rows["category"].map(order), _m=rows["metric"].map(metric_order))
    return rows.sort_values(["_c", "_m"])[columns].reset_index(drop=True)


def rates_table(rates: pd.DataFrame) -> pd.DataFrame:
    """One row per category (``all`` last), per rate the columns ``<rate>``, ``<rate> 95% CI``, ``<rate> n``.

    A rate a category lacks (no safe-labelled prompts there: no over-refusal) stays empty.
    """
    if rates.empty:
        return pd.DataFrame(columns=["category"])
    out = pd.DataFrame({"category": _categories_last_all(rates["category"])})
    for metric, label in RATE_LABELS.items():
        part = rates[rates["metric"] == metric]
        if part.empty:
            continue
        merged = out[["category"]].merge(part, on="category", how="left")
        out[label] = merged["value"].astype(float)
        bounds = zip(merged["ci_low"].tolist(), merged["ci_high"].tolist(), strict=True)
        out[f"{label} 95% CI"] = [format_ci(lo, hi) for lo, hi in bounds]
        out[f"{label} n"] = pd.to_numeric(merged["n"], errors="coerce").astype("Int64")
    return out


def verdict(row: Mapping[str, Any]) -> str:
    """What a compared metric row means: ``REGRESSION``, ``worse``, ``better``, ``significant`` or ``""``.

    From the fields :func:`gemmawatch.compare.compare_runs` decided (``regression``,
    ``significant``, ``direction``, ``gates``); a worse metric that does not gate the
    release (timings, the checks' own scores) says so.
    """
    if row.get("regression"):
        return "REGRESSION"
    if not row.get("significant"):
        return ""
    direction = row.get("direction")
    if direction in ("better", "worse"):
        return str(direction) + ("" if row.get("gates", True) else " (not gating)")
    return "significant"


def _changed(delta: object) -> bool:
    return isinstance(delta, int | float) and not math.isnan(delta) and abs(delta) > 1e-12


def comparison_frame(comparison: Mapping[str, Any], *, all_rows: bool = False) -> pd.DataFrame:
    """The metric table of a comparison: base, candidate, delta (95 % CI), n, test, p, adjusted p, marks.

    Like ``gemmawatch compare``, unchanged per-category breakdown rows (family
    ``secondary``, not significant, delta 0) are left out unless ``all_rows``.
    """
    columns = ["metric", "base", "candidate", "delta", "delta 95% CI", "n", "test", "p", "p adj", "sig.", "verdict"]
    alpha = float(comparison.get("alpha") or 0.05)
    rows = []
    for m in comparison.get("metrics") or []:
        if not all_rows and m.get("family") == "secondary" and not m.get("significant") and not _changed(m["delta"]):
            continue
        ci = m.get("ci") or (None, None)
        rows.append(
            {
                "metric": m["name"],
                "base": m.get("base"),
                "candidate": m.get("candidate"),
                "delta": m.get("delta"),
                "delta 95% CI": format_ci(ci[0], ci[1]),
                "n": m.get("n"),
                "test": m.get("test"),
                "p": m.get("p_value"),
                "p adj": m.get("p_adjusted"),
                "sig.": significance_mark(m.get("p_adjusted"), alpha),
                "verdict": verdict(m),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    frame["n"] = pd.to_numeric(frame["n"], errors="coerce").astype("Int64")
    for column in ("base", "candidate", "delta", "p", "p adj"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def diff_frame(diff: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """The per-prompt diff of a comparison as one plain-text table: newly unsafe first, then newly
    refused, then newly wrong (a prompt in two lists appears twice, once per change)."""
    rows = []
    for key, label in DIFF_LABELS.items():
        for item in diff.get(key) or []:
            rows.append(
                {
                    "change": label,
                    "task": item.get("task"),
                    "doc_id": item.get("doc_id"),
                    "label": item.get("target"),
                    "prompt": item.get("prompt"),
                    "base_output": item.get("base_output"),
                    "cand_output": item.get("cand_output"),
                }
            )
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def probe_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """Red-team metric rows, generically: ``probe`` (task after ``redteam/``; ``all`` for the
    run-wide row of task ``redteam``), ``detector`` (the filter; ``all`` for ``none``), metric,
    value, 95 % CI text, n; probes in stored order, ``all`` last.
    """
    columns = ["probe", "detector", "metric", "value", "95% CI", "ci_low", "ci_high", "n"]
    if metrics.empty or "task" not in metrics.columns:
        return pd.DataFrame(columns=columns)
    tasks = metrics["task"].astype(str)
    rows = metrics[(tasks == REDTEAM_TASK) | tasks.str.startswith(REDTEAM_TASK + "/")].copy()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    for column in ("filter", "ci_low", "ci_high", "n"):
        if column not in rows.columns:
            rows[column] = None
    rows["probe"] = [t.partition("/")[2] or ALL_CATEGORIES for t in rows["task"].astype(str)]
    rows["detector"] = [ALL_CATEGORIES if pd.isna(f) or f in ("", "none") else str(f) for f in rows["filter"]]
    rows["95% CI"] = [format_ci(lo, hi) for lo, hi in zip(rows["ci_low"], rows["ci_high"], strict=True)]
    rows["n"] = pd.to_numeric(rows["n"], errors="coerce").astype("Int64")
    order = {p: i for i, p in enumerate(_categories_last_all(rows["probe"]))}
    rows = rows.assign(_p=rows["probe"].map(order), _d=rows["detector"] != ALL_CATEGORIES)
    return rows.sort_values(["_p", "_d", "detector", "metric"])[columns].reset_index(drop=True)
