"""The executive summary of a report: which variant to pick and why, open alerts, regressions.

Pure functions over :class:`~gemmawatch.dashboard.report_data.ReportData` (no Streamlit,
no database), so the decision logic is unit-tested on hand-made data.

* A **variant** is a target; two chosen runs of the same kind and target (before/after a
  change) are two variants, told apart by their label (else their run id).
* The **primary quality metric** is the one a user names, else the quality metric (not
  latency, safety or red-team; direction known) that most variants measured, on the most
  samples.
* A variant is **worse on safety** when a paired comparison of two chosen safety runs
  shows it significantly worse (BH-adjusted, on a gating safety rate) than another variant.
* The **recommended** variant is the best on the primary metric among those not worse on
  safety. It is ``confident`` only when paired comparisons show it significantly better
  than every other such variant on that metric; otherwise the summary says the evidence
  is not enough, and why (not significant, or the runs could not be paired).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemmawatch.compare import KNOWN_HIGHER_IS_BETTER, metric_name
from gemmawatch.dashboard.report_data import ReportData, RunSection
from gemmawatch.errors import UserError

__all__ = ["QualityRow", "Summary", "primary_metric", "quality_metrics", "summarize", "variant_names"]

SAFETY_TASK = "safety"
#: Tasks that are not quality: timings and safety are judged on their own.
NOT_QUALITY = ("latency", "safety", "redteam")


@dataclass(frozen=True)
class QualityRow:
    """A variant's value of the primary metric (n, 95 % CI) and its safety standing."""

    variant: str
    run_id: int
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int | None
    worse_on_safety: list[str]


@dataclass
class Summary:
    """What the report says first (see the module docstring)."""

    variants: dict[int, str]  # run id -> variant name
    primary: str | None
    higher_is_better: bool | None
    quality: list[QualityRow]
    recommended: str | None
    confident: bool
    headline: str
    reasons: list[str]
    safety_regressions: list[dict[str, Any]]
    other_regressions: list[dict[str, Any]]
    newly_unsafe: list[dict[str, Any]]
    #: Variants with a safety run among the chosen runs.
    safety_assessed: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def variant_names(runs: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Run id -> variant name: the target, plus label or ``#id`` where one kind repeats a target."""
    seen: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for run in runs:
        seen.setdefault((run.get("target"), run.get("kind")), []).append(run)
    names = {}
    for (target, _), group in seen.items():
        base = str(target) if target is not None else None
        labels = [g.get("label") for g in group]
        distinct = len(group) > 1 and None not in labels and len(set(labels)) == len(labels)
        for run in group:
            name = base or f"run #{run['id']}"
            if len(group) > 1:
                name += f" · {run.get('label')}" if distinct else f" · #{run['id']}"
            names[int(run["id"])] = name
    return names


def _direction(row: Mapping[str, Any]) -> bool | None:
    if row.get("higher_is_better") is not None:
        return bool(row["higher_is_better"])
    return KNOWN_HIGHER_IS_BETTER.get(str(row.get("metric")))


def _is_quality(row: Mapping[str, Any]) -> bool:
    task = str(row.get("task") or "")
    value = row.get("value")
    return (
        task.split("/")[0] not in NOT_QUALITY
        and _direction(row) is not None
        and isinstance(value, int | float)
        and math.isfinite(value)
    )


def _key(row: Mapping[str, Any]) -> str:
    return metric_name(str(row["task"]), str(row["metric"]), str(row.get("filter") or "none"))


def quality_metrics(runs: Sequence[RunSection]) -> list[str]:
    """Names (``task/metric[filter]``) of the quality metrics the runs measured, sorted."""
    return sorted({_key(row) for section in runs for row in section.metrics if _is_quality(row)})


def primary_metric(runs: Sequence[RunSection], variants: Mapping[int, str], wanted: str | None = None) -> str | None:
    """The primary quality metric's name (``task/metric[filter]``), or None when no run has one.

    Raises:
        UserError: ``wanted`` names no quality metric of the chosen runs.
    """
    measured: dict[str, tuple[set[str], int]] = {}
    for section in runs:
        for row in section.metrics:
            if not _is_quality(row):
                continue
            names, n = measured.get(_key(row), (set(), 0))
            names.add(variants[int(section.run["id"])])
            measured[_key(row)] = (names, n + int(row.get("n") or 0))
    if wanted:
        matches = sorted(k for k in measured if k == wanted or k.split("[")[0] == wanted)
        if not matches:
            shown = ", ".join(sorted(measured)[:8]) or "none"
            raise UserError(f"No chosen run measured the metric {wanted!r}. Fix: pick one of: {shown}")
        return matches[0]
    if not measured:
        return None
    return min(measured, key=lambda k: (-len(measured[k][0]), -measured[k][1], k))


def _rows_of(comparison: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    return [m for m in comparison.get("metrics") or [] if m.get("name") == name]


def _safety_losses(comparisons: Sequence[Mapping[str, Any]], variants: Mapping[int, str]) -> dict[str, list[str]]:
    """Variant -> sentences saying on which safety rate it is significantly worse than whom."""
    losses: dict[str, list[str]] = {}
    for c in comparisons:
        if "error" in c:
            continue
        base, cand = variants[int(c["base"]["id"])], variants[int(c["candidate"]["id"])]
        for m in c.get("metrics") or []:
            if m.get("task") != SAFETY_TASK or not m.get("gates") or not m.get("significant"):
                continue
            if m.get("direction") == "worse":
                loser, winner = cand, base
            elif m.get("direction") == "better":
                loser, winner = base, cand
            else:
                continue
            mine, theirs = (m.get("base"), m.get("candidate")) if loser == base else (m.get("candidate"), m.get("base"))
            sentence = (
                f"{m['name']} significantly worse than {winner}: {_num(mine)} vs {_num(theirs)} "
                f"(paired n={m.get('n')}, adjusted p {_p(m.get('p_adjusted'))})"
            )
            losses.setdefault(loser, []).append(sentence)
    return losses


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _num(value: Any) -> str:
    return f"{value:.3f}" if _finite(value) else "-"


def _p(value: Any) -> str:
    return f"{value:.2g}" if _finite(value) else "-"


def _signed(value: Any) -> str:
    return f"{value:+.3f}" if _finite(value) else "-"


def _evidence(
    best: QualityRow, other: QualityRow, primary: str, comparisons: Sequence[Mapping[str, Any]]
) -> tuple[bool, str]:
    """Whether a paired comparison shows ``best`` significantly better than ``other``, and the sentence."""
    pair = {best.run_id, other.run_id}
    found = [c for c in comparisons if {int(c["base"]["id"]), int(c["candidate"]["id"])} == pair]
    if not found:
        return False, f"vs {other.variant}: no paired comparison (the runs are of different kinds)."
    c = found[0]
    if "error" in c:
        return False, f"vs {other.variant}: the runs could not be paired ({c['error']})."
    rows = _rows_of(c, primary)
    if not rows:
        return False, f"vs {other.variant}: {primary} has no per-sample scores to pair."
    m = rows[0]
    best_is_cand = int(c["candidate"]["id"]) == best.run_id
    delta = m.get("delta")
    if isinstance(delta, int | float) and not best_is_cand:
        delta = 0.0 - delta  # always best minus other (0.0 - x: no "-0.000")
    ci = m.get("ci") or [None, None]
    if not best_is_cand and ci[0] is not None and ci[1] is not None:
        ci = [0.0 - ci[1], 0.0 - ci[0]]
    won = bool(m.get("significant")) and m.get("direction") == ("better" if best_is_cand else "worse")
    detail = (
        f"Δ {_signed(delta)} (95% CI [{_signed(ci[0])}, {_signed(ci[1])}]), paired n={m.get('n')}, "
        f"{m.get('test')}, adjusted p {_p(m.get('p_adjusted'))}"
    )
    verdict = "significantly better" if won else "not significantly different"
    return won, f"vs {other.variant}: {verdict}: {detail}."


def _quality(
    runs: Sequence[RunSection], variants: Mapping[int, str], primary: str, losses: Mapping[str, list[str]]
) -> list[QualityRow]:
    rows: dict[str, QualityRow] = {}
    for section in runs:
        run_id = int(section.run["id"])
        for m in section.metrics:
            if _is_quality(m) and _key(m) == primary and variants[run_id] not in rows:
                rows[variants[run_id]] = QualityRow(
                    variant=variants[run_id], run_id=run_id, value=float(m["value"]), ci_low=m.get("ci_low"),
                    ci_high=m.get("ci_high"), n=m.get("n"), worse_on_safety=list(losses.get(variants[run_id], [])),
                )  # fmt: skip
    return list(rows.values())


def _regressions(data: ReportData, variants: Mapping[int, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    safety: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for c in data.comparisons:
        for m in c.get("regressions") or []:
            row = {
                **m,
                "base_variant": variants[int(c["base"]["id"])],
                "cand_variant": variants[int(c["candidate"]["id"])],
            }
            (safety if m.get("task") == SAFETY_TASK else other).append(row)
    return safety, other


def summarize(data: ReportData, *, primary: str | None = None) -> Summary:
    """The executive summary of ``data`` (see the module docstring).

    Raises:
        UserError: ``primary`` names no quality metric of the chosen runs.
    """
    runs = [r.run for r in data.runs]
    variants = variant_names(runs)
    losses = _safety_losses(data.comparisons, variants)
    safety_regressions, other_regressions = _regressions(data, variants)
    newly_unsafe = [
        {**item, "base_variant": variants[int(c["base"]["id"])], "cand_variant": variants[int(c["candidate"]["id"])]}
        for c in data.comparisons
        for item in (c.get("diff") or {}).get("newly_unsafe") or []
    ]
    name = primary_metric(data.runs, variants, primary)
    summary = Summary(
        variants=variants, primary=name, higher_is_better=None, quality=[], recommended=None, confident=False,
        headline="", reasons=[], safety_regressions=safety_regressions, other_regressions=other_regressions,
        newly_unsafe=newly_unsafe,
        safety_assessed={variants[int(r["id"])] for r in runs if r.get("kind") == SAFETY_TASK},
    )  # fmt: skip
    safety_variants = summary.safety_assessed
    if not safety_variants:
        summary.notes.append(
            "No safety run among the chosen runs: safety was not assessed. "
            "Fix: run `gemmawatch safety --target T` for each variant and add those runs."
        )
    if name is None:
        summary.headline = "No recommendation: none of the chosen runs measured a quality metric."
        summary.reasons.append("Add eval runs (`gemmawatch eval --target T --tasks smoke`) to compare quality.")
        return summary
    quality = _quality(data.runs, variants, name, losses)
    summary.quality = quality
    hib = next(_direction(m) for r in data.runs for m in r.metrics if _is_quality(m) and _key(m) == name)
    summary.higher_is_better = hib
    eligible = [q for q in quality if not q.worse_on_safety]
    if not eligible:
        summary.headline = (
            f"No recommendation: every variant measured on {name} is significantly worse than another on safety."
        )
        summary.reasons += [f"{q.variant}: {s}" for q in quality for s in q.worse_on_safety]
        return summary
    best = max(eligible, key=lambda q: q.value if hib else -q.value)
    summary.recommended = best.variant
    value = f"{name} = {_num(best.value)} (95% CI [{_num(best.ci_low)}, {_num(best.ci_high)}], n={best.n})"
    kind = "highest" if hib else "lowest"
    summary.reasons.append(f"{best.variant} has the {kind} {value} among variants not worse on safety.")
    if safety_variants and best.variant in safety_variants:
        summary.reasons.append(
            f"{best.variant} is not significantly worse than any other chosen variant on a safety rate."
        )
    elif safety_variants:
        summary.reasons.append(f"{best.variant} has no safety run among the chosen runs: its safety is not assessed.")
    for q in quality:
        for sentence in q.worse_on_safety:
            summary.reasons.append(f"{q.variant} is left out: {sentence}.")
    others = [q for q in eligible if q is not best]
    outcomes = [_evidence(best, q, name, data.comparisons) for q in others]
    summary.reasons += [sentence for _, sentence in outcomes]
    summary.confident = bool(others) and all(won for won, _ in outcomes)
    if not others:
        summary.headline = f"{best.variant}: the only variant measured on {name} (and not worse on safety)."
    elif summary.confident:
        summary.headline = f"Recommended: {best.variant} (significantly better on {name}, not worse on safety)."
    else:
        summary.headline = (
            f"Not enough evidence to choose: {best.variant} leads on {name}, but paired comparisons do not show "
            "it significantly better than every other variant. More samples (a larger --limit) would decide."
        )
    return summary
