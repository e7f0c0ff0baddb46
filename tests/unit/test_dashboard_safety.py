"""Unit tests of the Safety page's table shaping and charts (no Streamlit, no database)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from gemmawatch.dashboard import charts, charts_safety, safety_tables


def _rate(category: str, metric: str, value: float, n: int = 10, **extra: Any) -> dict[str, Any]:
    return {"task": "safety", "metric": metric, "filter": category, "value": value,
            "ci_low": max(0.0, value - 0.1), "ci_high": min(1.0, value + 0.1), "n": n, **extra}  # fmt: skip


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _rate("all", "refusal_rate", 0.8, 20),
            _rate("weapons", "unsafe_output_rate", 0.1),
            _rate("weapons", "refusal_rate", 0.9),
            _rate("everyday", "over_refusal_rate", 0.2),
            _rate("weapons", "toxicity", 0.3),  # a check's own score: not a rate of this table
            {"task": "latency", "metric": "e2e_s_p50", "filter": "none", "value": 1.0, "n": 5},
        ]
    )


def test_rates_frame_orders_categories_all_last_and_metrics_by_definition() -> None:
    rates = safety_tables.rates_frame(_metrics())
    assert rates[["category", "metric"]].values.tolist() == [
        ["weapons", "refusal_rate"], ["weapons", "unsafe_output_rate"], ["everyday", "over_refusal_rate"],
        ["all", "refusal_rate"],
    ]  # fmt: skip
    table = safety_tables.rates_table(rates).set_index("category")
    assert table.loc["all", "refusal n"] == 20 and table.loc["weapons", "refusal 95% CI"] == "[0.8, 1]"
    assert pd.isna(table.loc["everyday", "refusal"]) and table.loc["everyday", "over-refusal 95% CI"] == "[0.1, 0.3]"
    assert "PII leak" not in table.columns  # a rate no row has gets no column


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame([{"task": "latency", "metric": "x", "value": 1}])])
def test_no_safety_rows_give_empty_tables_and_no_data_figures(frame: pd.DataFrame) -> None:
    rates = safety_tables.rates_frame(frame)
    assert rates.empty and safety_tables.rates_table(rates).empty
    assert safety_tables.probe_frame(frame).empty
    for fig in (charts_safety.safety_rates(rates), charts_safety.probe_pass_rates(safety_tables.probe_frame(frame))):
        assert not fig.data and charts.NO_DATA in [a.text for a in fig.layout.annotations]


def test_safety_rates_chart_groups_categories_with_ci_bars() -> None:
    rates = safety_tables.rates_frame(_metrics())
    rates.loc[rates["category"] == "everyday", ["ci_low", "ci_high"]] = None  # missing CI: zero-length bars
    fig = charts_safety.safety_rates(rates)
    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["refusal", "over-refusal", "unsafe output"]
    assert list(fig.layout.xaxis.categoryarray) == ["weapons", "everyday", "all"]
    assert list(traces["refusal"].x) == ["weapons", "all"]
    assert list(traces["refusal"].error_y.array) == pytest.approx([0.1, 0.1])
    assert list(traces["over-refusal"].error_y.array) == [0.0]
    assert fig.layout.barmode == "group" and fig.layout.yaxis.tickformat == ".0%"


def _compared(name: str, *, family: str = "primary", delta: float = 0.0, **extra: Any) -> dict[str, Any]:
    row = {"name": name, "base": 0.1, "candidate": 0.1 + delta, "delta": delta, "ci": [delta - 0.1, delta + 0.1],
           "n": 30, "test": "mcnemar", "p_value": 0.5, "p_adjusted": 0.5, "significant": False,
           "direction": "unchanged", "gates": True, "regression": False, "family": family}  # fmt: skip
    row.update(extra)
    return row


def test_comparison_frame_marks_significance_and_hides_unchanged_breakdowns() -> None:
    comparison = {
        "alpha": 0.05,
        "metrics": [
            _compared("safety/unsafe_output_rate[all]", delta=0.3, p_adjusted=0.0004, significant=True,
                      direction="worse", regression=True),  # fmt: skip
            _compared("safety/refusal_rate[all]", delta=-0.05, p_adjusted=0.004, significant=True, direction="better"),
            _compared("safety/toxicity[all]", family="secondary", delta=0.2, p_adjusted=0.02, significant=True,
                      direction="worse", gates=False),  # fmt: skip
            _compared("safety/pii_leak_rate[everyday]", family="secondary"),
            _compared("safety/pii_leak_rate[all]", p_adjusted=None, p_value=None, test="none"),
        ],
    }
    frame = safety_tables.comparison_frame(comparison).set_index("metric")
    assert frame["verdict"].tolist() == ["REGRESSION", "better", "worse (not gating)", ""]
    assert frame["sig."].tolist() == ["***", "**", "*", ""]
    assert frame.loc["safety/unsafe_output_rate[all]", "delta 95% CI"] == "[0.2, 0.4]"
    assert "safety/pii_leak_rate[everyday]" not in frame.index
    assert len(safety_tables.comparison_frame(comparison, all_rows=True)) == 5
    assert safety_tables.comparison_frame({"metrics": []}).empty


def test_diff_frame_puts_newly_unsafe_first() -> None:
    item = {"task": "safety/x", "doc_id": 1, "prompt": "p", "target": "safe", "base_output": "a", "cand_output": "b"}
    diff = {"newly_wrong": [item], "newly_refused": [item, item], "newly_unsafe": [item]}
    frame = safety_tables.diff_frame(diff)
    assert frame["change"].tolist() == ["newly unsafe", "newly refused", "newly refused", "newly wrong"]
    assert frame.columns.tolist() == safety_tables.DIFF_COLUMNS
    assert safety_tables.diff_frame({}).empty


def test_probe_frame_reads_any_redteam_metrics_generically() -> None:
    metrics = pd.DataFrame(
        [
            {"task": "redteam", "metric": "pass_rate", "filter": "none", "value": 0.5, "n": 30},
            {"task": "redteam/b.P", "metric": "pass_rate", "filter": "det.X", "value": 0.2, "n": 10,
             "ci_low": 0.05, "ci_high": 0.5},  # fmt: skip
            {"task": "redteam/b.P", "metric": "pass_rate", "filter": "none", "value": 0.3, "n": 10},
            {"task": "redteam/a.Q", "metric": "pass_rate", "filter": None, "value": 0.6, "n": 20},
            {"task": "safety", "metric": "refusal_rate", "filter": "all", "value": 0.9, "n": 10},
        ]
    )
    probes = safety_tables.probe_frame(metrics)
    assert probes[["probe", "detector"]].values.tolist() == [
        ["b.P", "all"], ["b.P", "det.X"], ["a.Q", "all"], ["all", "all"],
    ]  # fmt: skip
    assert probes["95% CI"].tolist() == ["", "[0.05, 0.5]", "", ""]
    fig = charts_safety.probe_pass_rates(probes)
    (bar,) = fig.data
    assert list(bar.y) == ["b.P", "a.Q", "all"] and list(bar.error_x.array) == [0.0, 0.0, 0.0]
    assert charts.NO_DATA in [a.text for a in charts_safety.probe_pass_rates(probes, metric="nope").layout.annotations]
