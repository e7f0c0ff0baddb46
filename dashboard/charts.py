"""Chart builders: pure functions, DataFrame in, plotly Figure out.

Nothing here imports Streamlit or touches the database, so every chart can be
unit-tested (and reused by a report exporter) without a running app. Each
builder accepts an empty frame and then returns a figure that says "No data"
instead of an empty set of axes that looks like a rendering bug.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "NO_DATA",
    "empty_figure",
    "error_bar_arrays",
    "latency_ecdf",
    "latency_histogram",
    "metric_bars_with_ci",
    "metric_key",
    "telemetry_timeline",
    "throughput_latency_curve",
]

#: Text of the annotation on a figure built from an empty frame.
NO_DATA = "No data"

# Height of one facet row; figures grow with the number of rows so that facets
# never get squashed into unreadable strips.
_ROW_HEIGHT = 260


def empty_figure(message: str = NO_DATA, *, height: int = 240) -> go.Figure:
    """Return a blank figure carrying a centred annotation (``"No data"`` by default)."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 20, "r": 20, "t": 30, "b": 20})
    return fig


def _missing(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c not in df.columns]


def _float_or_nan(value: object) -> float:
    if value is None:
        return math.nan
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return result


def error_bar_arrays(df: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Asymmetric error bar lengths ``(value - ci_low, ci_high - value)`` per row.

    A missing bound gives a zero-length bar rather than NaN, because plotly
    silently drops a whole error-bar trace when it meets NaN. Negative lengths
    (a CI that does not contain the point estimate, e.g. after rounding) are
    clipped to zero for the same reason.
    """
    nothing = [None] * len(df)
    lows = df["ci_low"].tolist() if "ci_low" in df.columns else nothing
    highs = df["ci_high"].tolist() if "ci_high" in df.columns else nothing
    minus: list[float] = []
    plus: list[float] = []
    for value, low, high in zip(df["value"].tolist(), lows, highs, strict=True):
        v, lo, hi = _float_or_nan(value), _float_or_nan(low), _float_or_nan(high)
        minus.append(0.0 if math.isnan(v) or math.isnan(lo) else max(v - lo, 0.0))
        plus.append(0.0 if math.isnan(v) or math.isnan(hi) else max(hi - v, 0.0))
    return minus, plus


def metric_key(metric: str, filt: object) -> str:
    """Facet name of a metric: ``metric`` or ``metric (filter)`` when the filter is not "none"."""
    if filt is None or (isinstance(filt, float) and math.isnan(filt)) or str(filt) in ("", "none"):
        return str(metric)
    return f"{metric} ({filt})"


def metric_bars_with_ci(
    df: pd.DataFrame,
    *,
    series: str = "run_label",
    max_cols: int = 3,
    title: str | None = None,
) -> go.Figure:
    """Grouped bars with 95 % CI error bars: one facet per metric, tasks on x, one colour per run.

    ``df`` holds metric rows (``task``, ``metric``, ``filter``, ``value``,
    ``ci_low``, ``ci_high``, optionally ``n``) plus a ``series`` column naming
    the run or target each row belongs to. One facet per metric, each with its
    own y axis, because accuracies (0-1), latencies (seconds) and throughputs
    (tokens/s) side by side on a shared axis would flatten all but one of them.
    """
    if df.empty or _missing(df, ["task", "metric", "value"]):
        return empty_figure()
    data = df.copy()
    if series not in data.columns:
        data[series] = data["run_id"].map(lambda r: f"#{r}") if "run_id" in data.columns else "value"
    filters = data["filter"].tolist() if "filter" in data.columns else ["none"] * len(data)
    data["_facet"] = [metric_key(m, f) for m, f in zip(data["metric"].tolist(), filters, strict=True)]
    facets = list(dict.fromkeys(data["_facet"]))
    series_values = list(dict.fromkeys(data[series].astype(str)))
    # Many facets (the latency probe has ~9 metrics): one more column keeps rows few.
    cols = max(1, min(max_cols + (len(facets) > 2 * max_cols), len(facets)))
    rows = math.ceil(len(facets) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=facets,
        vertical_spacing=min(0.12, 0.6 / rows),
        horizontal_spacing=0.06,
    )
    palette = _palette(len(series_values))
    in_legend: set[str] = set()
    for i, facet in enumerate(facets):
        row, col = i // cols + 1, i % cols + 1
        part = data[data["_facet"] == facet]
        for j, name in enumerate(series_values):
            sub = part[part[series].astype(str) == name]
            if sub.empty:
                continue
            minus, plus = error_bar_arrays(sub)
            ns = sub["n"].tolist() if "n" in sub.columns else [None] * len(sub)
            fig.add_trace(
                go.Bar(
                    name=name,
                    legendgroup=name,
                    # One legend entry per series, not one per facet.
                    showlegend=name not in in_legend,
                    x=sub["task"].astype(str).tolist(),
                    y=sub["value"].astype(float).tolist(),
                    error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                    marker_color=palette[j],
                    customdata=[[n] for n in ns],
                    hovertemplate="%{x}<br>%{y:.4g}<br>n=%{customdata[0]}<extra>" + name + "</extra>",
                ),
                row=row,
                col=col,
            )
            in_legend.add(name)
    height = max(320, _ROW_HEIGHT * rows + 80)
    top, bottom = (60 if title else 40), 80
    fig.update_layout(
        barmode="group",
        height=height,
        # A legend with one entry only repeats the page header.
        showlegend=len(series_values) > 1,
        margin={"l": 40, "r": 20, "t": top, "b": bottom},
        # Legend below the x tick labels: y is in plot-area fractions, so convert ~35 px.
        legend={"orientation": "h", "yanchor": "top", "y": -35 / (height - top - bottom), "x": 0},
        title=title,
    )
    return fig


def _palette(n: int) -> list[str]:
    # A fixed colour per series position keeps a run's colour identical across facets.
    base = list(plotly.colors.qualitative.Plotly)
    return [base[i % len(base)] for i in range(n)]


def telemetry_timeline(df: pd.DataFrame, *, metrics: Sequence[str] | None = None) -> go.Figure:
    """Line chart of telemetry over time: one row per metric (own y axis), shared time axis.

    ``df`` holds telemetry rows (``ts``, ``metric``, ``value``, optionally
    ``unit``, ``source``, ``labels``). Rows with different labels (e.g. two
    GPUs) become separate lines in the same row. ``metrics`` picks and orders
    the rows; by default every metric in the frame is drawn.
    """
    if df.empty or _missing(df, ["ts", "metric", "value"]):
        return empty_figure()
    data = df.copy()
    names = list(metrics) if metrics is not None else list(dict.fromkeys(data["metric"]))
    data = data[data["metric"].isin(names)]
    names = [m for m in names if m in set(data["metric"])]
    if not names:
        return empty_figure()
    units = data.groupby("metric")["unit"].first().to_dict() if "unit" in data.columns else {}
    titles = [f"{m} ({units[m]})" if units.get(m) else m for m in names]
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        subplot_titles=titles,
        vertical_spacing=min(0.08, 0.5 / len(names)),
    )
    data["_line"] = data["labels"].map(_labels_text) if "labels" in data.columns else ""
    for i, metric in enumerate(names, start=1):
        part = data[data["metric"] == metric].sort_values("ts")
        for line, sub in part.groupby("_line", sort=True):
            name = f"{metric} {line}".strip()
            fig.add_trace(
                go.Scatter(x=sub["ts"], y=sub["value"], mode="lines", name=name, showlegend=bool(line)),
                row=i,
                col=1,
            )
    fig.update_layout(
        height=max(300, 200 * len(names) + 60),
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        hovermode="x unified",
    )
    return fig


def _labels_text(labels: object) -> str:
    if not isinstance(labels, dict) or not labels:
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def latency_histogram(df: pd.DataFrame, *, column: str = "latency_s", nbins: int = 30) -> go.Figure:
    """Histogram of per-sample latency (``latency_s`` by default), one overlaid colour per task."""
    if df.empty or column not in df.columns:
        return empty_figure()
    data = df[pd.to_numeric(df[column], errors="coerce").notna()]
    if data.empty:
        return empty_figure()
    fig = go.Figure()
    groups = data.groupby("task", sort=True) if "task" in data.columns else [("all", data)]
    for task, sub in groups:
        fig.add_trace(go.Histogram(x=sub[column].astype(float), name=str(task), nbinsx=nbins, opacity=0.75))
    fig.update_layout(
        barmode="overlay",
        height=320,
        xaxis_title=f"{column} (s)" if column.endswith("_s") else column,
        yaxis_title="samples",
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
    )
    return fig


#: Marker symbol and size of a sweep's knee step on a throughput-latency curve.
KNEE_SYMBOL = "star"
KNEE_SIZE = 20
_POINT_SIZE = 9

#: Percentiles marked on a latency ECDF.
ECDF_PERCENTILES = (50.0, 95.0, 99.0)

# Seconds as SI values: 0.0012 -> "1.2ms", 1.5 -> "1.5s" (tick and hover formats).
_SECONDS_AXIS = {"tickformat": ".3~s", "ticksuffix": "s"}


def _finite(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def throughput_latency_curve(
    steps: pd.DataFrame,
    *,
    latency: str = "e2e_p50_s",
    knees: Mapping[str, int] | None = None,
    latency_label: str | None = None,
) -> go.Figure:
    """Throughput-latency curve of load runs: one line per run, the knee step starred.

    ``steps`` holds one row per step (``load_tables.steps_frame``): ``run_label``,
    ``step``, ``request_throughput`` (x), the ``latency`` column (y, seconds) with
    ``<latency>_ci_low``/``_ci_high`` (95 % CI error bars) and optionally
    ``<latency>_n``, ``profile`` and ``load_order`` (the order the points are
    joined in; by throughput without it). ``knees`` maps a run label to the step
    its sweep saturated at: that point gets a larger star and a "knee" note.
    Steps without a value on either axis are left out.
    """
    name = latency_label or latency
    if steps.empty or _missing(steps, ["run_label", "step", "request_throughput", latency]):
        return empty_figure()
    knees = dict(knees or {})
    data = steps.assign(_x=_finite(steps["request_throughput"]), _y=_finite(steps[latency]))
    data = data[data["_x"].notna() & data["_y"].notna()]
    if data.empty:
        return empty_figure(f"No {name} values")
    labels = list(dict.fromkeys(data["run_label"].astype(str)))
    palette = _palette(len(labels))
    fig = go.Figure()
    for label, colour in zip(labels, palette, strict=True):
        part = data[data["run_label"].astype(str) == label]
        part = part.sort_values(["load_order" if "load_order" in part.columns else "_x", "step"])
        bars = pd.DataFrame(
            {
                "value": part["_y"],
                "ci_low": _column_or_nan(part, f"{latency}_ci_low"),
                "ci_high": _column_or_nan(part, f"{latency}_ci_high"),
            }
        )
        minus, plus = error_bar_arrays(bars)
        knee = knees.get(label)
        at_knee = [knee is not None and int(s) == knee for s in part["step"]]
        profiles = part["profile"].astype(str).tolist() if "profile" in part.columns else [""] * len(part)
        ns = part[f"{latency}_n"].tolist() if f"{latency}_n" in part.columns else [None] * len(part)
        fig.add_trace(
            go.Scatter(
                name=label,
                x=part["_x"].tolist(),
                y=part["_y"].tolist(),
                mode="lines+markers",
                line={"color": colour},
                marker={
                    "color": colour,
                    "symbol": [KNEE_SYMBOL if k else "circle" for k in at_knee],
                    "size": [KNEE_SIZE if k else _POINT_SIZE for k in at_knee],
                    "line": {"width": [1.5 if k else 0 for k in at_knee], "color": "black"},
                },
                error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                customdata=[[int(s), p, n] for s, p, n in zip(part["step"], profiles, ns, strict=True)],
                hovertemplate=(
                    "step %{customdata[0]} · %{customdata[1]}<br>%{x:.4g} req/s<br>"
                    + name
                    + " %{y:.3~s}s (n=%{customdata[2]})<extra>"
                    + label
                    + "</extra>"
                ),
            )
        )
        for x, y, k in zip(part["_x"], part["_y"], at_knee, strict=True):
            if k:
                fig.add_annotation(
                    x=x, y=y, text="knee", showarrow=True, arrowhead=2, ax=0, ay=-36, font={"color": colour}
                )
    fig.update_layout(
        height=440,
        margin={"l": 60, "r": 20, "t": 30, "b": 60},
        xaxis_title="request throughput (req/s)",
        yaxis_title=f"{name} latency",
        yaxis=_SECONDS_AXIS,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
    )
    return fig


def _column_or_nan(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(math.nan, index=frame.index)


def latency_ecdf(
    timings: pd.DataFrame,
    *,
    column: str = "ttft_s",
    series: str = "run_label",
    title: str | None = None,
    x_title: str | None = None,
    log_x: bool = False,
    max_points: int = 2000,
) -> go.Figure:
    """Empirical CDF of a per-request latency, one line per run, with p50/p95/p99 marked.

    Percentiles are numpy's default (linear interpolation between order
    statistics), the definition vLLM's ``benchmark_serving`` reports, and are
    computed from every value; the line itself is drawn from at most
    ``max_points`` evenly spaced order statistics per run. Each percentile is a
    dotted vertical segment (named ``"<run> p50"`` etc.) up to its level, in the
    run's colour; the legend gives each run's n. Missing values are left out.
    """
    if timings.empty or column not in timings.columns:
        return empty_figure()
    data = timings.assign(_v=_finite(timings[column]))
    data = data[data["_v"].notna()]
    if data.empty:
        return empty_figure()
    if series not in data.columns:
        data = data.assign(**{series: "all"})
    labels = list(dict.fromkeys(data[series].astype(str)))
    palette = _palette(len(labels))
    fig = go.Figure()
    for label, colour in zip(labels, palette, strict=True):
        values = np.sort(data.loc[data[series].astype(str) == label, "_v"].to_numpy(dtype=float))
        n = len(values)
        levels = np.arange(1, n + 1) / n
        keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
        fig.add_trace(
            go.Scatter(
                name=f"{label} (n={n})",
                x=values[keep].tolist(),
                y=levels[keep].tolist(),
                mode="lines",
                line={"color": colour, "shape": "hv"},
                hovertemplate="%{x:.3~s}s<br>%{y:.1%} of requests at or below<extra>" + label + "</extra>",
            )
        )
        for q, value in zip(ECDF_PERCENTILES, np.percentile(values, ECDF_PERCENTILES), strict=True):
            fig.add_shape(
                type="line",
                name=f"{label} p{q:g}",
                x0=float(value),
                x1=float(value),
                y0=0,
                y1=q / 100,
                line={"color": colour, "dash": "dot", "width": 1.5},
            )
            fig.add_annotation(
                x=float(value), y=q / 100, text=f"p{q:g}", showarrow=False, yshift=8, font={"size": 10, "color": colour}
            )
    axis = {**_SECONDS_AXIS} if column.endswith("_s") else {}
    fig.update_layout(
        height=360,
        title=title,
        margin={"l": 50, "r": 20, "t": 40 if title else 20, "b": 50},
        xaxis={**axis, "type": "log" if log_x else "linear", "title": x_title or column},
        yaxis={"title": "fraction of requests", "range": [0, 1.05], "tickformat": ".0%"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    return fig
