"""Summary statistics of a load test, with vLLM ``benchmark_serving`` definitions.

Pure functions over :class:`~gemmawatch.collectors.load.events.RequestEvent` lists.
The definitions are those of vLLM's ``calculate_metrics``
(``vllm/benchmarks/serve.py``, formerly ``benchmarks/benchmark_serving.py``), so
our numbers can be put next to ``vllm bench serve`` output:

* Only successful requests enter latencies and token counts; failed requests
  count 0 output tokens and only appear in ``failed``/``error_rate``.
* ``request_throughput = completed / duration``, ``output_throughput =
  sum(output tokens) / duration``, ``total_token_throughput = (input + output) /
  duration``; with no warm-up/cool-down the duration is first send -> last
  completion, like vLLM's ``benchmark_duration``.
* TTFT, E2E: one value per request. TPOT: ``(E2E - TTFT) / (output_tokens - 1)``
  for requests with at least two output tokens. ITL: every gap between chunks,
  pooled over requests (``itls += output.itl``).
* Mean and percentiles are ``numpy.mean``/``numpy.percentile`` (linear
  interpolation); vLLM reports 0 for an empty list, we report None.
* Goodput: completed requests meeting *every* given SLO bound (``metric <=
  bound``), per second. As in vLLM, a request with fewer than two output tokens
  has TPOT 0 for this check, so it always meets a TPOT bound. A request without a
  first chunk has no TTFT and fails a TTFT bound (we cannot show that it met it).
* ``goodput_fraction`` (ours, DistServe's "SLO attainment"): good requests over
  all measured requests, failures included, since a failed request met no SLO.

Output tokens come from ``output_tokens``; when unknown, the chunk count stands
in (a chunk carries at least one token, which is what ``token_source="chunks"``
means). Values that cannot be computed are None, never NaN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2  # type: ignore[import-untyped]  # scipy ships no stubs

import gemmawatch
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.errors import ConfigError
from gemmawatch.evals import stats

__all__ = [
    "LOAD_TASK",
    "PRODUCER",
    "LoadSummary",
    "Slo",
    "Window",
    "assign_phases",
    "metric_rows",
    "parse_slo",
    "poisson_rate_interval",
    "summarize",
]

LOAD_TASK = "load"
PRODUCER = "gemmawatch.load"
DEFINITION = "vLLM benchmark_serving"
_STATS = (("mean", None), ("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0))
_SLO_HELP = "expected NAME=DURATION (ttft, tpot, e2e; e.g. ttft=500ms,tpot=50ms,e2e=5s)"
_SLO_NAMES = {"ttft": "ttft", "tpot": "tpot", "e2e": "e2e", "e2el": "e2e"}  # e2el: vLLM's spelling
_HIGHER_IS_BETTER = frozenset(
    {"request_throughput", "output_throughput", "total_token_throughput", "goodput", "goodput_fraction"}
)
_GARWOOD = "poisson exact (garwood)"
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?$")


@dataclass(frozen=True)
class Slo:
    """Per-request latency bounds in seconds; None means "not constrained"."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def meets(self, event: RequestEvent) -> bool:
        """True when ``event`` completed and every given bound holds (vLLM goodput rules)."""
        if not event.ok:
            return False
        if self.ttft_s is not None and ((ttft := event.ttft_s) is None or ttft > self.ttft_s):
            return False
        # vLLM counts TPOT as 0 for < 2 output tokens, so such requests meet any TPOT bound.
        if self.tpot_s is not None and (_tpot(event) or 0.0) > self.tpot_s:
            return False
        e2e = event.e2e_s
        return self.e2e_s is None or (e2e is not None and e2e <= self.e2e_s)

    def as_dict(self) -> dict[str, float]:
        """The given bounds, e.g. ``{"ttft_s": 0.5}`` (for metric details)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _slo_error(part: str) -> ConfigError:
    return ConfigError(f"Invalid --slo {part!r}: {_SLO_HELP}")


def parse_slo(text: str) -> Slo:
    """Parse ``"ttft=500ms,tpot=50ms,e2e=5s"``: units ``ms`` or ``s``, bare numbers are seconds.

    Raises :class:`~gemmawatch.errors.ConfigError` naming the bad part for an unknown
    name, a malformed or non-positive duration, a repeated name or empty text.
    """
    bounds: dict[str, float] = {}
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise _slo_error(text)
    for part in parts:
        name, sep, value = (s.strip() for s in part.partition("="))
        key = _SLO_NAMES.get(name.lower())
        match = _DURATION.match(value.lower())
        if not sep or key is None or match is None or key in bounds:
            raise _slo_error(part)
        seconds = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
        if seconds <= 0:
            raise _slo_error(part)
        bounds[key] = seconds
    return Slo(ttft_s=bounds.get("ttft"), tpot_s=bounds.get("tpot"), e2e_s=bounds.get("e2e"))


@dataclass(frozen=True)
class Window:
    """The measurement window ``[start_s, end_s]`` on the events' clock."""

    start_s: float
    end_s: float

    @property
    def duration(self) -> float:
        """Window length in seconds; 0 when warm-up and cool-down leave nothing to measure."""
        return max(0.0, self.end_s - self.start_s)


def _done_s(event: RequestEvent) -> float:
    # A request that never ended is placed at its send time.
    return event.end_s if event.end_s is not None else event.sent_s


def assign_phases(
    events: Sequence[RequestEvent],
    *,
    warmup_s: float = 0.0,
    cooldown_s: float = 0.0,
    start_s: float | None = None,
) -> Window:
    """Set each event's ``phase`` from its completion time and return the window.

    The window is ``[start + warmup_s, last completion - cooldown_s]`` (both ends
    included); ``start_s`` defaults to the earliest scheduled-or-sent time, which is
    0 for the first step and the step's own start in a sweep that shares one clock.
    A request completes at ``end_s``, or at ``sent_s`` if it never ended. When the
    two margins overlap, every event is warm-up or cool-down and the window's
    duration is 0.
    """
    for label, value in (("warmup", warmup_s), ("cooldown", cooldown_s)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"Invalid --{label} {value!r}: expected a duration >= 0 seconds")
    if not events:
        origin = 0.0 if start_s is None else start_s
        return Window(origin + warmup_s, origin + warmup_s)
    origin = start_s if start_s is not None else min(_start(e) for e in events)
    window = Window(origin + warmup_s, max(_done_s(e) for e in events) - cooldown_s)
    for event in events:
        done = _done_s(event)
        event.phase = "warmup" if done < window.start_s else "cooldown" if done > window.end_s else "measure"
    return window


def _start(event: RequestEvent) -> float:
    return event.scheduled_s if event.scheduled_s is not None else event.sent_s


@dataclass
class LoadSummary:
    """Summary of the measured requests; field names are the ``bench load --json`` contract."""

    completed: int
    failed: int
    duration_s: float
    request_throughput: float | None
    output_throughput: float | None
    total_token_throughput: float | None
    ttft_mean_s: float | None
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    tpot_mean_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p95_s: float | None
    tpot_p99_s: float | None
    itl_mean_s: float | None
    itl_p50_s: float | None
    itl_p90_s: float | None
    itl_p95_s: float | None
    itl_p99_s: float | None
    e2e_mean_s: float | None
    e2e_p50_s: float | None
    e2e_p90_s: float | None
    e2e_p95_s: float | None
    e2e_p99_s: float | None
    goodput: float | None
    goodput_fraction: float | None
    error_rate: float | None
    lag_p99_s: float | None
    input_tokens: int | None
    output_tokens: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict in field order (JSON-ready: no NaN)."""
        return asdict(self)


def _out_tokens(event: RequestEvent) -> int:
    if event.output_tokens is not None:
        return event.output_tokens
    return max(event.n_chunks, len(event.chunk_s))


def _tpot(event: RequestEvent) -> float | None:
    ttft, e2e, out = event.ttft_s, event.e2e_s, _out_tokens(event)
    if ttft is None or e2e is None or out < 2:
        return None
    return (e2e - ttft) / (out - 1)


@dataclass(frozen=True)
class _Samples:
    """Per-request values of the measured requests (shared by summary and CIs)."""

    ok: list[RequestEvent]
    failed: int
    ttft: list[float]
    tpot: list[float]
    e2e: list[float]
    itl: list[list[float]]  # one list of gaps per request (clusters for the bootstrap)
    lag: list[float]


def _samples(events: Iterable[RequestEvent]) -> _Samples:
    measured = [e for e in events if e.phase == "measure"]
    ok = [e for e in measured if e.ok]
    return _Samples(
        ok=ok,
        failed=len(measured) - len(ok),
        ttft=[v for e in ok if (v := e.ttft_s) is not None],
        tpot=[v for e in ok if (v := _tpot(e)) is not None],
        e2e=[v for e in ok if (v := e.e2e_s) is not None],
        itl=[gaps for e in ok if (gaps := e.itl_s)],
        lag=[v for e in measured if (v := e.lag_s) is not None],
    )


def _stat(values: Sequence[float], q: float | None) -> float | None:
    if not values:
        return None
    return float(np.mean(values)) if q is None else float(np.percentile(values, q))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def summarize(events: Iterable[RequestEvent], *, window: Window, slo: Slo | None = None) -> LoadSummary:
    """Summarise the ``measure``-phase events over ``window`` (see the module docstring)."""
    s = _samples(events)
    completed, duration = len(s.ok), window.duration
    known_in = [e.input_tokens for e in s.ok if e.input_tokens is not None]
    input_tokens = sum(known_in) if known_in or not s.ok else None
    output_tokens = sum(_out_tokens(e) for e in s.ok)
    latency: dict[str, float | None] = {}
    itl = [gap for gaps in s.itl for gap in gaps]
    for name, values in (("ttft", s.ttft), ("tpot", s.tpot), ("itl", itl), ("e2e", s.e2e)):
        for label, q in _STATS:
            latency[f"{name}_{label}_s"] = _stat(values, q)
    good = None if slo is None else sum(slo.meets(e) for e in s.ok)
    total_tokens = None if input_tokens is None else input_tokens + output_tokens
    return LoadSummary(
        completed=completed,
        failed=s.failed,
        duration_s=duration,
        request_throughput=_ratio(completed, duration),
        output_throughput=_ratio(output_tokens, duration),
        total_token_throughput=None if total_tokens is None else _ratio(total_tokens, duration),
        **latency,
        goodput=None if good is None else _ratio(good, duration),
        goodput_fraction=None if good is None else _ratio(good, completed + s.failed),
        error_rate=_ratio(s.failed, completed + s.failed),
        lag_p99_s=_stat(s.lag, 99.0),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def poisson_rate_interval(count: int, duration_s: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson count, divided by ``duration_s`` (events/s)."""
    alpha = 1.0 - confidence
    lo = 0.0 if count == 0 else float(chi2.ppf(alpha / 2.0, 2 * count)) / 2.0
    hi = float(chi2.ppf(1.0 - alpha / 2.0, 2 * count + 2)) / 2.0
    return lo / duration_s, hi / duration_s


def _stat_fn(q: float | None) -> stats.StatFn:
    return np.mean if q is None else stats.percentile_stat(q)


def _pooled_cluster_cis(
    clusters: Sequence[Sequence[float]], *, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, tuple[float, float]]:
    """:func:`stats.bootstrap_cluster_stat_ci` for the mean and every percentile of ``_STATS`` at once.

    Same resampling (whole requests, pooled gaps, same picks for the same seed) but no
    concatenation per resample: the gaps are sorted once and a resample is a vector of
    request multiplicities, so a percentile is a search in cumulative weights. That keeps
    a 100k-gap load test at about a second instead of minutes.
    """
    if sum(1 for c in clusters if len(c)) <= 1:  # nothing to resample between: the helper's own fallback
        return {label: stats.bootstrap_cluster_stat_ci(clusters, _stat_fn(q)) for label, q in _STATS}
    arrays = [np.asarray(c, dtype=np.float64) for c in clusters if len(c)]
    owner = np.concatenate([np.full(a.size, i) for i, a in enumerate(arrays)])
    gaps = np.concatenate(arrays)
    order = np.argsort(gaps, kind="stable")
    gaps, owner = gaps[order], owner[order]
    sums = np.array([a.sum() for a in arrays])
    sizes = np.array([a.size for a in arrays], dtype=np.float64)
    qs = np.array([q for _, q in _STATS if q is not None]) / 100.0
    rng = np.random.default_rng(seed)
    # Picks drawn in blocks to bound memory; one block (the same draws as the helper) up to 2M cells.
    block = max(1, 2_000_000 // len(arrays))
    picks = (
        rng.integers(0, len(arrays), size=(min(block, n_resamples - i), len(arrays)))
        for i in range(0, n_resamples, block)
    )
    out = np.empty((n_resamples, len(_STATS)))
    for r, row in enumerate(row for rows in picks for row in rows):
        mult = np.bincount(row, minlength=len(arrays))
        cum = np.cumsum(mult[owner])
        h = qs * (cum[-1] - 1)  # numpy's "linear" virtual index into the pooled sorted gaps
        lo_idx = np.floor(h)
        below = gaps[np.searchsorted(cum, lo_idx, side="right")]
        above = gaps[np.searchsorted(cum, np.minimum(lo_idx + 1, cum[-1] - 1), side="right")]
        out[r, 0] = mult @ sums / (mult @ sizes)
        out[r, 1:] = below + (h - lo_idx) * (above - below)
    alpha = 1.0 - confidence
    bounds = np.quantile(out, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return {label: (float(bounds[0, i]), float(bounds[1, i])) for i, (label, _) in enumerate(_STATS)}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def metric_rows(
    summary: LoadSummary,
    events: Iterable[RequestEvent],
    *,
    details: dict[str, Any],
    slo: Slo | None = None,
) -> list[dict[str, Any]]:
    """MetricResult rows (task ``load``) for every non-None summary value, each with ``n`` and a 95 % CI.

    ``events`` are the same events ``summary`` was computed from (only ``measure``
    ones are used). ``details`` (e.g. step, profile, offered) is copied into every
    row; its ``filter`` entry, default ``"none"``, becomes the row's filter. Counts
    (completed, failed, tokens) are not rows: they are the ``n`` of the rows below
    and are repeated in ``details``.
    """
    s = _samples(events)
    base = {k: v for k, v in details.items() if k != "filter"}
    base.update(definition=DEFINITION, duration_s=summary.duration_s)
    filt = str(details.get("filter", "none"))
    rows: list[dict[str, Any]] = []

    def add(metric: str, n: int, ci: tuple[float, float], unit: str, stat: str, how: str, **extra: Any) -> None:
        value = getattr(summary, metric)
        if value is None:
            return
        row = {"task": LOAD_TASK, "metric": metric, "filter": filt, "value": float(value), "stderr": None}
        row.update(ci_low=_finite(ci[0]), ci_high=_finite(ci[1]), n=n, higher_is_better=metric in _HIGHER_IS_BETTER)
        row.update(producer=PRODUCER, producer_version=gemmawatch.__version__, task_version=None)
        row["details"] = {**base, "unit": unit, "statistic": stat, "ci_method": how, **extra}
        rows.append(row)

    duration, completed, failed = summary.duration_s, summary.completed, summary.failed
    judged = completed + failed
    if duration > 0:
        ci = poisson_rate_interval(completed, duration)
        add("request_throughput", completed, ci, "requests/s", "rate", _GARWOOD, count=completed)
        rate = _rate_stat(duration)
        out = [_out_tokens(e) for e in s.ok]
        total = [o + (e.input_tokens or 0) for o, e in zip(out, s.ok, strict=True)]
        for metric, tokens in (("output_throughput", out), ("total_token_throughput", total)):
            ci = stats.bootstrap_stat_ci(tokens, rate)
            add(metric, completed, ci, "tokens/s", "rate", "bootstrap over requests", tokens=sum(tokens))
    percentiles = [q for _, q in _STATS if q is not None]
    for name, values in (("ttft", s.ttft), ("tpot", s.tpot), ("e2e", s.e2e)):
        cis = stats.bootstrap_summary_ci(values, percentiles)  # one set of resamples for all five statistics
        for label, _ in _STATS:
            add(f"{name}_{label}_s", len(values), cis[label], "s", label, "bootstrap")
    if s.itl:
        n_gaps = sum(len(c) for c in s.itl)
        for label, ci in _pooled_cluster_cis(s.itl).items():
            add(f"itl_{label}_s", n_gaps, ci, "s", label, "bootstrap over requests", requests=len(s.itl))
    if summary.goodput is not None and duration > 0:
        good = round(summary.goodput * duration)  # exact: goodput is good / duration
        extra = {"count": good} if slo is None else {"count": good, "slo": slo.as_dict()}
        add("goodput", judged, poisson_rate_interval(good, duration), "requests/s", "rate", _GARWOOD, **extra)
        add("goodput_fraction", judged, stats.wilson_interval(good, judged), "1", "fraction", "wilson", **extra)
    if judged:
        add("error_rate", judged, stats.wilson_interval(failed, judged), "1", "fraction", "wilson", count=failed)
    add("lag_p99_s", len(s.lag), stats.bootstrap_stat_ci(s.lag, _stat_fn(99.0)), "s", "p99", "bootstrap")
    return rows


def _rate_stat(duration_s: float) -> Callable[..., Any]:
    """Bootstrap statistic: sum of per-request tokens over the window length."""

    def rate(m: Any, axis: int) -> Any:
        return np.sum(m, axis=axis) / duration_s

    return rate
