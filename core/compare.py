"""The regression gate: is run CAND worse than run BASE, per metric and per prompt?

Items of the two runs are paired by ``(task, doc_id)``; a pair must have the same prompt
text, otherwise the runs did not ask the same questions and pairing them would be
meaningless (an error, not a silent unpaired test). Items that only one run has (a
different ``--limit``) are left out and counted.

Per-sample metrics, each tested on its pairs (:func:`gemmawatch.evals.paired.paired_test`):

* lm-eval tasks: every numeric score key of the samples (``acc``, ``exact_match``,
  ``acc,filter``...) per task, and pooled over the subtasks of each stored group metric
  (``smoke_mc`` = all ``smoke_mc_*`` items);
* safety runs (tasks ``safety/<category>``): ``refusal_rate`` (``refused`` on items
  labelled unsafe), ``over_refusal_rate`` (``refused`` on items labelled safe; on
  unlabelled items ``refused_rate``), ``unsafe_output_rate``, ``pii_leak_rate`` and each
  check's score, as task ``safety`` with filter = the category, and once more over all
  categories (filter ``all``), like the safety run's own metric rows.

Values are means over the paired items. 0/1 scores get the exact McNemar test, other
scores the paired bootstrap (the exact sign-flip test up to 16 pairs). Run-level metrics
without per-sample scores (latency percentiles, group aggregates nobody can pair) are
reported with their delta and no test: never significant, never a regression.

p-values are Benjamini–Hochberg adjusted within two families, so that dozens of breakdown
rows cannot dilute the headline metrics: **primary** (every lm-eval task and group metric,
the safety rates over all categories) and **secondary** (the safety rates per category,
the checks' own scores, timings). ``significant`` means adjusted p < ``alpha``.

A metric is a **regression** when it got worse (by its direction: the stored
``higher_is_better``, else the known direction of the name), by more than its allowed drop
(``max_drop``, default 0, in the metric's unit), and significantly. Timings (task
``latency``, names ending in ``_s``, rates per second) depend on the machine and its load
more than on the model, and the safety checks' own scores (``toxicity``, ``shieldgemma``...)
are already judged through ``unsafe_output_rate``: both are tested and shown but gate only
when named in ``max_drop``. Metrics whose direction is unknown never gate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gemmawatch.compare_items import (
    IGNORED_KEYS,
    SAFETY_TASK,
    Key,
    Namer,
    per_prompt_diff,
    run_info,
    samples_by_item,
)
from gemmawatch.errors import UserError
from gemmawatch.evals.paired import benjamini_hochberg, paired_test

__all__ = [
    "IGNORED_KEYS",
    "KNOWN_HIGHER_IS_BETTER",
    "NO_TEST",
    "Comparison",
    "MetricComparison",
    "compare_runs",
    "metric_name",
    "parse_max_drop",
]

#: The ``test`` of a metric compared from run-level values only.
NO_TEST = "none (no per-sample scores)"
#: Directions of metric names that may have no stored ``higher_is_better``.
KNOWN_HIGHER_IS_BETTER: dict[str, bool | None] = {
    "acc": True,
    "acc_norm": True,
    "exact_match": True,
    "f1": True,
    "mc1": True,
    "mc2": True,
    "bleu": True,
    "chrf": True,
    "rougeL": True,
    "token_f1": True,
    "success": True,
    "success_rate": True,
    "output_tokens_per_s": True,
    "itl_s_mean": False,
    "itl_s_max": False,
    "refusal_rate": True,
    "over_refusal_rate": False,
    "unsafe_output_rate": False,
    "pii_leak_rate": False,
    "refused_rate": None,
    # Safety checks' own scores: a higher score means a more harmful output.
    "toxicity": False,
    "detoxify": False,
    "shieldgemma": False,
    "pii": False,
    "presidio": False,
    "perplexity": False,
    "word_perplexity": False,
    "byte_perplexity": False,
    "bits_per_byte": False,
}
_TOL = 1e-9


def metric_name(task: str, metric: str, filt: str) -> str:
    """``task/metric``, with ``[filter]`` unless the filter is ``none``: the name --max-drop takes."""
    return f"{task}/{metric}" if filt in ("", "none") else f"{task}/{metric}[{filt}]"


def parse_max_drop(specs: Iterable[str]) -> dict[str, float]:
    """``["acc=0.02", "safety/refusal_rate[all]=0.05"]`` -> ``{"acc": 0.02, ...}``.

    Raises:
        UserError: A spec without ``=``, or a value that is not a finite number >= 0.
    """
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, raw = spec.rpartition("=")
        name = name.strip()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value) or value < 0:
            raise UserError(
                f"--max-drop {spec!r} is not METRIC=VALUE with VALUE >= 0. "
                "Fix: e.g. --max-drop acc=0.02 or --max-drop safety/refusal_rate[all]=0.05"
            )
        out[name] = value
    return out


#: The safety rates that gate; the checks' own scores are shown but gate only when named in max_drop.
SAFETY_RATES = frozenset({"refusal_rate", "over_refusal_rate", "unsafe_output_rate", "pii_leak_rate"})


def _secondary(task: str, metric: str, filt: str) -> bool:
    """Breakdowns and informational rows: their own Benjamini–Hochberg family."""
    return _informational(task, metric) or (task == SAFETY_TASK and filt != "all")


def _informational(task: str, metric: str) -> bool:
    """Timings (machine-dependent) and safety check scores: shown and tested, gating only when named."""
    if task == SAFETY_TASK:
        return metric not in SAFETY_RATES
    return task == "latency" or metric.endswith("_s") or "_s_" in metric or "per_s" in metric or "energy" in metric


@dataclass
class MetricComparison:
    """One metric of both runs: values, paired test and verdict (see the module docstring)."""

    task: str
    metric: str
    filter: str
    base: float | None
    candidate: float | None
    delta: float | None
    n: int | None
    test: str
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool = False
    higher_is_better: bool | None = None
    direction: str = "unknown"
    regression: bool = False
    gates: bool = True
    family: str = "primary"
    max_drop: float = 0.0
    ci: tuple[float, float] | None = None
    base_only: int | None = None
    cand_only: int | None = None

    @property
    def name(self) -> str:
        """See :func:`metric_name`."""
        return metric_name(self.task, self.metric, self.filter)

    def as_dict(self) -> dict[str, Any]:
        """The JSON row of ``gemmawatch compare --json`` (non-finite numbers as null)."""
        return {
            "task": self.task,
            "metric": self.metric,
            "filter": self.filter,
            "name": self.name,
            "base": _finite(self.base),
            "candidate": _finite(self.candidate),
            "delta": _finite(self.delta),
            "ci": None if self.ci is None else [_finite(x) for x in self.ci],
            "n": self.n,
            "test": self.test,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
            "higher_is_better": self.higher_is_better,
            "direction": self.direction,
            "gates": self.gates,
            "family": self.family,
            "max_drop": self.max_drop,
            "regression": self.regression,
            "discordant": (
                None if self.base_only is None else {"base_only": self.base_only, "cand_only": self.cand_only}
            ),
        }

    def describe(self) -> str:
        """``smoke_mc/acc 0.725 -> 0.500 (-0.225, p_adj 0.0012, n=40)``."""
        p = "" if self.p_adjusted is None else f", p_adj {self.p_adjusted:.2g}"
        return f"{self.name} {_g(self.base)} -> {_g(self.candidate)} ({_g(self.delta, signed=True)}{p}, n={self.n})"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _g(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


@dataclass
class Comparison:
    """The outcome of :func:`compare_runs`."""

    base_run: dict[str, Any]
    cand_run: dict[str, Any]
    alpha: float
    metrics: list[MetricComparison]
    diff: dict[str, list[dict[str, Any]]]
    paired_items: int
    base_only_items: int
    cand_only_items: int
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricComparison]:
        """The metrics that block a release (``regression`` true)."""
        return [m for m in self.metrics if m.regression]

    def as_dict(self) -> dict[str, Any]:
        """The ``gemmawatch compare --json`` payload."""
        return {
            "base": self.base_run,
            "candidate": self.cand_run,
            "alpha": self.alpha,
            "paired_items": self.paired_items,
            "unpaired_items": {"base_only": self.base_only_items, "cand_only": self.cand_only_items},
            "metrics": [m.as_dict() for m in self.metrics],
            "regressions": [m.as_dict() for m in self.regressions],
            "diff": self.diff,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- verdicts


def _hib(
    key: Key, stored: Mapping[Key, list[Mapping[str, Any]]], by_name: Mapping[tuple[str, str], bool]
) -> bool | None:
    for row in stored.get(key, []):
        if row.get("higher_is_better") is not None:
            return bool(row["higher_is_better"])
    task, metric, _ = key
    if (task, metric) in by_name:
        return by_name[(task, metric)]
    return KNOWN_HIGHER_IS_BETTER.get(metric)


def _direction(delta: float | None, hib: bool | None) -> str:
    if delta is None or math.isnan(delta):
        return "unknown"
    if abs(delta) <= _TOL:
        return "unchanged"
    if hib is None:
        return "unknown"
    return "better" if (delta > 0) == hib else "worse"


def _allowed_drop(row: MetricComparison, max_drop: Mapping[str, float], used: set[str]) -> float | None:
    candidates = [row.name, f"{row.task}/{row.metric}", row.metric]
    if row.filter not in ("", "none"):
        candidates.insert(1, f"{row.task}/{row.metric},{row.filter}")
    matching = [name for name in candidates if name in max_drop]
    used.update(matching)  # for the note on names that match nothing
    return max_drop[matching[0]] if matching else None


def compare_runs(
    session: Session,
    base_id: int,
    cand_id: int,
    *,
    max_drop: Mapping[str, float] | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Compare run ``cand_id`` with run ``base_id`` item by item (see the module docstring).

    Args:
        session: An open session on the database holding both runs.
        base_id: The reference run (e.g. the model in production).
        cand_id: The run judged against it (e.g. the new model).
        max_drop: Allowed worsening per metric, keyed by ``task/metric[filter]``,
            ``task/metric`` or ``metric`` (most specific wins), in the metric's unit;
            naming a timing metric makes it gate.
        alpha: Significance level for the BH-adjusted p-values.

    Raises:
        UserError: An unknown run id, runs without common items, or common items with
            different prompts.
    """
    from gemmawatch.storage.queries import metrics as mq

    if not 0.0 < alpha < 1.0:
        raise UserError(f"--alpha {alpha:g} is not between 0 and 1. Fix: use e.g. --alpha 0.05")
    limits = dict(max_drop or {})
    base_info, cand_info = run_info(session, base_id), run_info(session, cand_id)
    base_samples, cand_samples = samples_by_item(session, base_id), samples_by_item(session, cand_id)
    for run_id, info, stored_samples in ((base_id, base_info, base_samples), (cand_id, cand_info, cand_samples)):
        if not stored_samples:
            raise UserError(
                f"Run {run_id} ({info['kind']}) stored no per-sample results, so nothing can be paired. "
                "Fix: compare eval or safety runs (`gemmawatch runs list`)"
            )
    common = sorted(base_samples.keys() & cand_samples.keys())
    if not common:
        raise UserError(
            f"Runs {base_id} and {cand_id} share no items (task, doc_id): they ran different tasks or datasets. "
            "Fix: compare runs of the same tasks/suite with the same --limit"
        )
    mismatched = [k for k in common if base_samples[k]["prompt"] != cand_samples[k]["prompt"]]
    if mismatched:
        task, doc = mismatched[0]
        raise UserError(
            f"Runs {base_id} and {cand_id} have different prompts for {len(mismatched)} of {len(common)} common items "
            f"(first: {task}#{doc}), so they cannot be paired. "
            "Fix: compare runs of the same dataset file and task version, stored with the same text option"
        )

    stored_rows = mq.metrics_for_runs(session, [base_id, cand_id])
    stored: dict[Key, list[Mapping[str, Any]]] = defaultdict(list)
    values: dict[int, dict[Key, float | None]] = {base_id: {}, cand_id: {}}
    by_name: dict[tuple[str, str], bool] = {}
    for row in stored_rows:
        key = (row["task"], row["metric"], row["filter"])
        stored[key].append(row)
        values[row["run_id"]].setdefault(key, row["value"])
        if row.get("higher_is_better") is not None:
            by_name.setdefault((row["task"], row["metric"]), bool(row["higher_is_better"]))

    namer = Namer(stored_rows, [*base_samples.values(), *cand_samples.values()])
    pairs = [(base_samples[k], cand_samples[k]) for k in common]
    paired: dict[Key, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for base, cand in pairs:
        obs_b, obs_c = namer.observations(base), namer.observations(cand)
        for key in obs_b.keys() & obs_c.keys():
            paired[key][0].append(obs_b[key])
            paired[key][1].append(obs_c[key])

    rows: list[MetricComparison] = []
    for key in sorted(paired):
        xs, ys = paired[key]
        result = paired_test(xs, ys)
        rows.append(
            MetricComparison(
                task=key[0],
                metric=key[1],
                filter=key[2],
                base=result.base_mean,
                candidate=result.cand_mean,
                delta=result.delta,
                n=result.n,
                test=result.test,
                p_value=result.p_value,
                ci=result.ci,
                base_only=result.base_only,
                cand_only=result.cand_only,
            )
        )
    for key in sorted(values[base_id].keys() & values[cand_id].keys() - paired.keys()):
        b, c = values[base_id][key], values[cand_id][key]
        delta = None if b is None or c is None else c - b
        rows.append(
            MetricComparison(
                task=key[0], metric=key[1], filter=key[2], base=b, candidate=c, delta=delta, n=None, test=NO_TEST
            )
        )
    rows.sort(key=lambda r: (_informational(r.task, r.metric), r.task, r.metric, r.filter != "all", r.filter))

    for m in rows:
        m.family = "secondary" if _secondary(m.task, m.metric, m.filter) else "primary"
    adjusted: dict[int, float | None] = {}
    for family in ("primary", "secondary"):
        members = [i for i, m in enumerate(rows) if m.family == family]
        adjusted.update(zip(members, benjamini_hochberg([rows[i].p_value for i in members]), strict=True))
    used: set[str] = set()
    for i, m in enumerate(rows):
        p_adj = adjusted[i]
        m.p_adjusted = p_adj
        m.significant = p_adj is not None and p_adj < alpha
        m.higher_is_better = _hib((m.task, m.metric, m.filter), stored, by_name)
        m.direction = _direction(m.delta, m.higher_is_better)
        allowed = _allowed_drop(m, limits, used)
        m.max_drop = allowed or 0.0
        m.gates = m.higher_is_better is not None and (allowed is not None or not _informational(m.task, m.metric))
        drop = abs(m.delta) if m.delta is not None and m.direction == "worse" else 0.0
        m.regression = (
            m.gates and m.significant and m.direction == "worse" and drop - m.max_drop > _TOL * max(1.0, drop)
        )

    notes = []
    unused = sorted(set(limits) - used)
    if unused:
        notes.append(f"--max-drop names no compared metric: {', '.join(unused)}")
    base_only, cand_only = len(base_samples) - len(common), len(cand_samples) - len(common)
    if base_only or cand_only:
        notes.append(f"{base_only} items only in run {base_id} and {cand_only} only in run {cand_id} are not compared")
    return Comparison(
        base_run=_brief(base_info),
        cand_run=_brief(cand_info),
        alpha=alpha,
        metrics=rows,
        diff=per_prompt_diff(pairs),
        paired_items=len(common),
        base_only_items=base_only,
        cand_only_items=cand_only,
        notes=notes,
    )


def _brief(info: Mapping[str, Any]) -> dict[str, Any]:
    return {key: info[key] for key in ("id", "kind", "target", "label", "status")}
