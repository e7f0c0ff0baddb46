"""Table shaping of the Compare page: pure pandas, no Streamlit, no database.

* the variant table: per metric, each run's stored value with its 95 % CI and n, and for
  every candidate the **paired** delta against the baseline with its CI, BH-adjusted p and
  significance mark, taken from ``gemmawatch.compare.compare_runs`` (``Comparison.as_dict()``)
  -- never a difference of two independently estimated values tested as if unpaired;
* the cost axes of the accuracy-vs-cost scatter (latency p50, tokens per second, peak memory)
  and :func:`pareto_front`, which marks the variants no other variant beats on both axes;
* the choice of runs (latest run of each target) and the quality / safety / performance
  overview of the same targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gemmawatch.dashboard.charts import metric_key
from gemmawatch.dashboard.tables import LATENCY_TASK, default_compare_runs, format_ci

__all__ = [
    "peak_throughput",
    "COST_AXES",
    "MEMORY_METRICS",
    "QUALITY_KINDS",
    "SAFETY_HEADLINES",
    "CostAxis",
    "cost_frame",
    "default_quality",
    "default_runs",
    "latest_by_kind",
    "latest_runs",
    "pareto_front",
    "peak_memory",
    "quality_keys",
    "side_by_side",
    "significance_mark",
    "variant_table",
]


@dataclass(frozen=True)
class CostAxis:
    """One x axis of the accuracy-vs-cost scatter: the column of :func:`cost_frame` and its direction."""

    column: str
    label: str
    higher_is_better: bool


#: The cost axes the scatter offers, by key.
COST_AXES: dict[str, CostAxis] = {
    "latency": CostAxis("latency_p50_s", "latency p50 (s)", higher_is_better=False),
    "memory": CostAxis("peak_memory_mb", "peak memory (MB)", higher_is_better=False),
    "throughput": CostAxis("tokens_per_s", "output tokens/s", higher_is_better=True),
}

#: Latency-probe metrics read for the cost axes, first present wins (names of evals/latency.py and older runs).
LATENCY_P50_METRICS = ("e2e_s_p50",)
TOKENS_PER_S_METRICS = ("output_tokens_per_s_mean", "output_tokens_per_s")
#: Telemetry metrics read as memory, first present wins: accelerator memory is the deployment limit,
#: the process's resident memory stands in on CPU-only hosts.
MEMORY_METRICS = ("gpu.memory_used_mb", "process.rss_mb", "process.rss")


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    return float(value) if math.isfinite(value) else None


def pareto_front(
    points: Sequence[tuple[object, object]], *, x_higher_is_better: bool, y_higher_is_better: bool
) -> list[bool]:
    """Which points no other point dominates, in input order.

    Point *j* dominates *i* when it is at least as good on both axes and strictly better on
    one, each axis judged by its own direction (latency and memory: lower is better; tokens/s
    and accuracy: higher). Ties: identical points do not dominate each other, so both stay on
    the front; a point equal on one axis and better on the other dominates. A point with a
    missing or non-finite coordinate is never on the front and dominates nothing.
    """
    sx = 1.0 if x_higher_is_better else -1.0
    sy = 1.0 if y_higher_is_better else -1.0
    oriented: list[tuple[float, float] | None] = []
    for x, y in points:
        fx, fy = _finite(x), _finite(y)
        oriented.append(None if fx is None or fy is None else (sx * fx, sy * fy))
    front = []
    for i, p in enumerate(oriented):
        if p is None:
            front.append(False)
            continue
        dominated = any(
            q is not None and j != i and q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1])
            for j, q in enumerate(oriented)
        )
        front.append(not dominated)
    return front


def significance_mark(p_adjusted: object, alpha: float) -> str:
    """``***`` (adjusted p < alpha/50), ``**`` (< alpha/5), ``*`` (< alpha) or ``""`` (not significant / no test)."""
    p = _finite(p_adjusted)
    if p is None:
        return ""
    return "***" if p < alpha / 50 else "**" if p < alpha / 5 else "*" if p < alpha else ""


def _key(task: object, metric: object, filt: object) -> tuple[str, str]:
    return str(task), metric_key(str(metric), filt)


def variant_table(
    metrics: pd.DataFrame,
    run_ids: Sequence[int],
    labels: Mapping[int, str],
    comparisons: Mapping[int, Mapping[str, Any]],
) -> pd.DataFrame:
    """One row per task/metric; the baseline (``run_ids[0]``) and every candidate side by side.

    Columns per run: ``<label> value``, ``<label> 95% CI``, ``<label> n`` (the stored metric);
    per candidate also ``<label> Δ`` (paired delta of the items both runs share), ``<label> Δ 95% CI``
    and ``<label> sig.`` (:func:`significance_mark` of the BH-adjusted p), read from
    ``comparisons[candidate]`` (a ``Comparison.as_dict()``, or ``{"error": ...}`` when the runs
    could not be paired: the delta columns stay empty). A metric a run lacks stays empty, so a
    missing task is visible.
    """
    if metrics.empty or not run_ids:
        return pd.DataFrame(columns=["task", "metric"])
    data = metrics[metrics["run_id"].isin(list(run_ids))]
    filters = data["filter"].tolist() if "filter" in data.columns else ["none"] * len(data)
    stored: dict[int, dict[tuple[str, str], Mapping[str, Any]]] = {int(r): {} for r in run_ids}
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in data.to_dict("records")]
    for row, filt in zip(records, filters, strict=True):
        stored[int(row["run_id"])].setdefault(_key(row["task"], row["metric"], filt), row)
    keys = sorted({k for rows in stored.values() for k in rows})
    out = pd.DataFrame(keys, columns=["task", "metric"])
    base = run_ids[0]
    for run_id in run_ids:
        label = labels.get(run_id, f"#{run_id}")
        rows = [stored[run_id].get(k, {}) for k in keys]
        out[f"{label} value"] = [_finite(r.get("value")) for r in rows]
        out[f"{label} 95% CI"] = [format_ci(r.get("ci_low"), r.get("ci_high")) for r in rows]
        ns = [_finite(r.get("n")) for r in rows]
        out[f"{label} n"] = pd.array([None if n is None else round(n) for n in ns], dtype="Int64")
        if run_id == base:
            continue
        comparison = comparisons.get(run_id) or {}
        alpha = float(comparison.get("alpha") or 0.05)
        paired = {_key(m["task"], m["metric"], m["filter"]): m for m in comparison.get("metrics") or []}
        found = [paired.get(k, {}) for k in keys]
        out[f"{label} Δ"] = [_finite(m.get("delta")) for m in found]
        cis = [m.get("ci") or (None, None) for m in found]
        out[f"{label} Δ 95% CI"] = [format_ci(lo, hi) for lo, hi in cis]
        out[f"{label} sig."] = [significance_mark(m.get("p_adjusted"), alpha) for m in found]
    for column in out.columns:
        if column.endswith((" value", " Δ")):
            out[column] = out[column].astype(float)
    return out


def quality_keys(metrics: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(task, metric, filter)`` of every non-latency metric, sorted: the y choices of the scatter."""
    if metrics.empty:
        return []
    rows = metrics[metrics["task"] != LATENCY_TASK]
    filters = rows["filter"].fillna("none") if "filter" in rows.columns else pd.Series(["none"] * len(rows))
    return sorted({(str(t), str(m), str(f)) for t, m, f in zip(rows["task"], rows["metric"], filters, strict=True)})


def peak_memory(summary: pd.DataFrame) -> tuple[float | None, str | None]:
    """``(highest reading, metric)`` of the first of :data:`MEMORY_METRICS` a telemetry summary has."""
    if summary.empty or not {"metric", "max"} <= set(summary.columns):
        return None, None
    for name in MEMORY_METRICS:
        values = [v for v in (_finite(x) for x in summary.loc[summary["metric"] == name, "max"]) if v is not None]
        if values:
            return max(values), name
    return None, None


def peak_throughput(steps: pd.DataFrame) -> float | None:
    """The highest output-token throughput of a load run's steps (None when no step has one)."""
    values = pd.to_numeric(steps.get("output_throughput", pd.Series(dtype=float)), errors="coerce").dropna()
    return float(values.max()) if not values.empty else None


def _first_value(rows: pd.DataFrame, names: Iterable[str]) -> float | None:
    for name in names:
        part = rows[rows["metric"] == name]
        if not part.empty:
            return _finite(part["value"].iloc[0])
    return None


def cost_frame(
    metrics: pd.DataFrame,
    run_ids: Sequence[int],
    labels: Mapping[int, str],
    memory: Mapping[int, float | None],
    quality: tuple[str, str, str] | None,
) -> pd.DataFrame:
    """One row per run: ``run_id``, ``run_label``, the cost columns of :data:`COST_AXES` and ``quality``
    (the value of the chosen ``(task, metric, filter)``, with ``quality_ci_low``/``high`` and ``quality_n``)."""
    columns = ["run_id", "run_label", "latency_p50_s", "tokens_per_s", "peak_memory_mb", "quality",
               "quality_ci_low", "quality_ci_high", "quality_n"]  # fmt: skip
    rows = []
    for run_id in run_ids:
        own = metrics[metrics["run_id"] == run_id] if not metrics.empty else metrics
        latency = own[own["task"] == LATENCY_TASK] if not own.empty else own
        row: dict[str, Any] = {
            "run_id": run_id,
            "run_label": labels.get(run_id, f"#{run_id}"),
            "latency_p50_s": _first_value(latency, LATENCY_P50_METRICS) if not latency.empty else None,
            "tokens_per_s": _first_value(latency, TOKENS_PER_S_METRICS) if not latency.empty else None,
            "peak_memory_mb": memory.get(run_id),
            "quality": None, "quality_ci_low": None, "quality_ci_high": None, "quality_n": None,
        }  # fmt: skip
        if quality is not None and not own.empty:
            task, metric, filt = quality
            filters = own["filter"].fillna("none") if "filter" in own.columns else pd.Series("none", index=own.index)
            hit = own[(own["task"] == task) & (own["metric"] == metric) & (filters == filt)]
            if not hit.empty:
                first = hit.iloc[0]
                row.update(
                    quality=_finite(first["value"]),
                    quality_ci_low=_finite(first.get("ci_low")),
                    quality_ci_high=_finite(first.get("ci_high")),
                    quality_n=_finite(first.get("n")),
                )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns[2:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def default_runs(runs: pd.DataFrame) -> list[int]:
    """The latest completed quality run (eval/demo) of each target when there are two such targets, else
    ``tables.default_compare_runs`` (the latest completed run of each target, any kind), oldest target first."""
    if runs.empty:
        return []
    quality = runs[runs["kind"].isin(list(QUALITY_KINDS))]
    picked = default_compare_runs(quality)
    return picked if len(picked) >= 2 else default_compare_runs(runs)


def default_quality(metrics: pd.DataFrame, keys: Sequence[tuple[str, str, str]]) -> int:
    """Index in ``keys`` of the quality metric most runs have (the first such in ``keys`` order): a default y
    that can draw every variant."""
    if metrics.empty or not keys:
        return 0
    filters = (
        metrics["filter"].fillna("none") if "filter" in metrics.columns else pd.Series("none", index=metrics.index)
    )
    triples = zip(metrics["task"].astype(str), metrics["metric"].astype(str), filters.astype(str), strict=True)
    counts: dict[tuple[str, str, str], set[int]] = {}
    for key, run_id in zip(triples, metrics["run_id"], strict=True):
        counts.setdefault(key, set()).add(int(run_id))
    best = max(len(counts.get(tuple(k), set())) for k in keys)  # type: ignore[arg-type]
    return next(i for i, k in enumerate(keys) if len(counts.get(tuple(k), set())) == best)  # type: ignore[arg-type]


def latest_runs(runs: pd.DataFrame, targets: Sequence[str], kind: str) -> list[int]:
    """The newest completed run of ``kind`` of each target, in the order of ``targets`` (targets without one are
    skipped). ``runs`` is the ``tables.runs_frame`` shape."""
    if runs.empty:
        return []
    done = runs[(runs["status"] == "completed") & (runs["kind"] == kind)]
    newest = done.groupby("target")["id"].max().to_dict()
    return [int(newest[t]) for t in targets if t in newest]


#: Run kinds whose metrics are quality scores (``gemmawatch demo`` stores eval runs of kind demo).
QUALITY_KINDS = ("eval", "demo")
SAFETY_KIND = "safety"
LOAD_KIND = "load"
#: Safety rates of the side-by-side view (metric rows of task ``safety``, filter ``all``).
SAFETY_HEADLINES = {"refusal_rate": "refusal", "unsafe_output_rate": "unsafe output"}


def latest_by_kind(runs: pd.DataFrame, targets: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per target, the newest completed run id of each family: ``quality``, ``safety``, ``load``."""
    out: dict[str, dict[str, int]] = {t: {} for t in targets}
    if runs.empty:
        return out
    done = runs[(runs["status"] == "completed") & runs["target"].isin(list(targets))]
    families = {"quality": list(QUALITY_KINDS), "safety": [SAFETY_KIND], "load": [LOAD_KIND]}
    for family, kinds in families.items():
        newest = done[done["kind"].isin(kinds)].groupby("target")["id"].max()
        for target, run_id in newest.items():
            out[str(target)][family] = int(run_id)
    return out


def side_by_side(
    latest: Mapping[str, Mapping[str, int]],
    metrics: pd.DataFrame,
    peak_throughput: Mapping[int, float | None],
    quality: tuple[str, str, str] | None,
) -> pd.DataFrame:
    """One row per target: its latest quality run with the chosen quality metric (value, CI, n) and latency,
    its latest safety run's refusal / unsafe-output rates over all categories, its latest load run's highest
    output throughput. Empty cells where a target has no run of that family."""
    rows = []
    for target, families in latest.items():
        q_id, s_id, l_id = families.get("quality"), families.get("safety"), families.get("load")
        cost = cost_frame(metrics, [q_id], {}, {}, quality).iloc[0] if q_id is not None else None
        row: dict[str, Any] = {
            "target": target,
            "quality run": q_id,
            "quality": None if cost is None else cost["quality"],
            "quality 95% CI": "" if cost is None else format_ci(cost["quality_ci_low"], cost["quality_ci_high"]),
            "quality n": None if cost is None else cost["quality_n"],
            "latency p50 (s)": None if cost is None else cost["latency_p50_s"],
            "tokens/s": None if cost is None else cost["tokens_per_s"],
            "safety run": s_id,
        }
        own = metrics[metrics["run_id"] == s_id] if s_id is not None and not metrics.empty else metrics.iloc[0:0]
        for metric, label in SAFETY_HEADLINES.items():
            hit = own[(own["task"] == "safety") & (own["metric"] == metric) & (own["filter"] == "all")]
            first = {str(k): v for k, v in hit.iloc[0].items()} if not hit.empty else {}
            row[label] = _finite(first.get("value"))
            row[f"{label} 95% CI"] = format_ci(first.get("ci_low"), first.get("ci_high"))
        row["load run"] = l_id
        row["peak output tok/s"] = peak_throughput.get(l_id) if l_id is not None else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in ("quality run", "safety run", "load run", "quality n"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("quality", "latency p50 (s)", "tokens/s", *SAFETY_HEADLINES.values(), "peak output tok/s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
