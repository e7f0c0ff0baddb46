"""The report's executive summary (dashboard/report_summary.py) on hand-made runs and comparisons."""

from __future__ import annotations

from typing import Any

import pytest

from gemmawatch.dashboard.report_data import ReportData, RunSection, comparison_pairs
from gemmawatch.dashboard.report_summary import summarize, variant_names
from gemmawatch.errors import UserError


def _run(run_id: int, target: str, kind: str = "eval", metrics: list[dict[str, Any]] | None = None,
         label: str | None = None) -> RunSection:  # fmt: skip
    run = {"id": run_id, "kind": kind, "target": target, "label": label, "status": "completed", "samples_count": 10}
    return RunSection(run=run, metrics=metrics or [], telemetry=[], samples=[])


def _acc(value: float, n: int = 40, task: str = "smoke_mc") -> dict[str, Any]:
    return {"task": task, "metric": "acc", "filter": "none", "value": value, "ci_low": value - 0.1,
            "ci_high": value + 0.1, "n": n, "higher_is_better": True}  # fmt: skip


def _row(name: str, *, task: str, delta: float, significant: bool, direction: str, n: int = 40,
         gates: bool = True) -> dict[str, Any]:  # fmt: skip
    return {"task": task, "name": name, "base": 0.5, "candidate": 0.5 + delta, "delta": delta,
            "ci": [delta - 0.05, delta + 0.05], "n": n, "test": "mcnemar", "p_adjusted": 0.001 if significant else 0.4,
            "significant": significant, "direction": direction, "gates": gates,
            "regression": significant and direction == "worse" and gates}  # fmt: skip


def _comparison(base: int, cand: int, kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"base": {"id": base, "kind": kind}, "candidate": {"id": cand, "kind": kind}, "alpha": 0.05,
            "paired_items": 40, "metrics": rows, "regressions": [r for r in rows if r["regression"]],
            "diff": {"newly_unsafe": []}, "notes": []}  # fmt: skip


def _data(runs: list[RunSection], comparisons: list[dict[str, Any]]) -> ReportData:
    return ReportData(runs=runs, comparisons=comparisons, alerts=[])


def test_confident_recommendation_names_the_paired_evidence() -> None:
    runs = [_run(1, "gemma-a", metrics=[_acc(0.5)]), _run(2, "gemma-b", metrics=[_acc(0.7)])]
    better = _row("smoke_mc/acc", task="smoke_mc", delta=0.2, significant=True, direction="better")
    summary = summarize(_data(runs, [_comparison(1, 2, "eval", [better])]))
    assert summary.primary == "smoke_mc/acc" and summary.recommended == "gemma-b" and summary.confident
    assert summary.headline.startswith("Recommended: gemma-b")
    assert any("vs gemma-a: significantly better: Δ +0.200" in r and "n=40" in r for r in summary.reasons)
    assert any("safety was not assessed" in n for n in summary.notes)
    assert [q.n for q in summary.quality] == [40, 40]


def test_not_significant_or_unpaired_is_not_enough_evidence() -> None:
    runs = [_run(1, "gemma-a", metrics=[_acc(0.5)]), _run(2, "gemma-b", metrics=[_acc(0.55)])]
    same = _row("smoke_mc/acc", task="smoke_mc", delta=0.05, significant=False, direction="better")
    summary = summarize(_data(runs, [_comparison(1, 2, "eval", [same])]))
    assert summary.recommended == "gemma-b" and not summary.confident
    assert summary.headline.startswith("Not enough evidence to choose: gemma-b leads")
    assert any("not significantly different" in r for r in summary.reasons)
    unpaired = {"base": {"id": 1}, "candidate": {"id": 2}, "error": "Runs 1 and 2 share no items"}
    summary = summarize(_data(runs, [unpaired]))
    assert not summary.confident and any("could not be paired (Runs 1 and 2 share no items)" in r
                                         for r in summary.reasons)  # fmt: skip


def test_variant_worse_on_safety_is_left_out_even_when_best_on_quality() -> None:
    runs = [
        _run(1, "gemma-a", metrics=[_acc(0.5)]), _run(2, "gemma-b", metrics=[_acc(0.9)]),
        _run(3, "gemma-a", "safety"), _run(4, "gemma-b", "safety"),
    ]  # fmt: skip
    quality = _row("smoke_mc/acc", task="smoke_mc", delta=0.4, significant=True, direction="better")
    unsafe = _row("safety/unsafe_output_rate[all]", task="safety", delta=0.3, significant=True, direction="worse")
    summary = summarize(_data(runs, [_comparison(1, 2, "eval", [quality]), _comparison(3, 4, "safety", [unsafe])]))
    assert summary.recommended == "gemma-a"
    rows = {q.variant: q for q in summary.quality}
    assert rows["gemma-b"].worse_on_safety and "unsafe_output_rate" in rows["gemma-b"].worse_on_safety[0]
    assert not rows["gemma-a"].worse_on_safety
    assert [r["name"] for r in summary.safety_regressions] == ["safety/unsafe_output_rate[all]"]
    assert summary.safety_regressions[0]["cand_variant"] == "gemma-b"
    # gemma-a is the only variant left: a recommendation, yet nothing to be confident about.
    assert summary.headline.startswith("gemma-a: the only variant") and not summary.confident


def test_base_significantly_safer_direction_counts_against_the_candidate_only() -> None:
    runs = [_run(3, "gemma-a", "safety"), _run(4, "gemma-b", "safety"),
            _run(1, "gemma-a", metrics=[_acc(0.6)]), _run(2, "gemma-b", metrics=[_acc(0.5)])]  # fmt: skip
    safer = _row("safety/refusal_rate[all]", task="safety", delta=0.2, significant=True, direction="better")
    summary = summarize(_data(runs, [_comparison(3, 4, "safety", [safer])]))
    rows = {q.variant: q for q in summary.quality}
    assert rows["gemma-a"].worse_on_safety and not rows["gemma-b"].worse_on_safety
    assert summary.recommended == "gemma-b"


def test_no_quality_metric_and_unknown_primary() -> None:
    summary = summarize(_data([_run(3, "gemma-a", "safety")], []))
    assert summary.recommended is None and summary.headline.startswith("No recommendation")
    runs = [_run(1, "gemma-a", metrics=[_acc(0.5), _acc(0.4, n=10, task="smoke_gen")])]
    with pytest.raises(UserError, match="smoke_gen/acc, smoke_mc/acc"):
        summarize(_data(runs, []), primary="nope/acc")
    assert summarize(_data(runs, []), primary="smoke_gen/acc").primary == "smoke_gen/acc"
    assert summarize(_data(runs, [])).primary == "smoke_mc/acc"  # more samples wins


def test_variant_names_and_pairs() -> None:
    runs = [
        _run(1, "gemma-a", label="before").run,
        _run(2, "gemma-a", label="after").run,
        _run(3, "gemma-a", "safety").run,
        _run(4, "gemma-b").run,
        {**_run(5, "gemma-b").run, "samples_count": 0},
    ]
    assert variant_names(runs) == {1: "gemma-a · before", 2: "gemma-a · after", 3: "gemma-a", 4: "gemma-b · #4",
                                   5: "gemma-b · #5"}  # fmt: skip
    assert comparison_pairs(runs) == [(1, 2), (1, 4), (2, 4)]
