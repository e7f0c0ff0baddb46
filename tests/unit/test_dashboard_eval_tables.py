"""Unit tests of the Evaluations page's table shaping (no Streamlit, no database)."""

from __future__ import annotations

import json
from typing import Any

from gemmawatch.dashboard import eval_tables


def _pair(task: str, doc: int, base: dict[str, Any], cand: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"task": task, "doc_id": doc, "target": "gold", "base_prompt": f"q{doc}", "cand_prompt": f"q{doc}",
            "base_output": "a", "cand_output": "<script>b</script>", "base_scores": base, "cand_scores": cand,
            "base_latency_s": 1.0, "cand_latency_s": 2.0, **extra}  # fmt: skip


def test_flips_classify_each_item_worst_first() -> None:
    pairs = [
        _pair("mc", 0, {"acc": 1.0}, {"acc": 1.0}),
        _pair("mc", 1, {"acc": 0.0}, {"acc": 1.0}),
        _pair("mc", 2, {"acc": 1.0}, {"acc": 0.0}),
        _pair("mc", 2, {"acc": 0.0}, {"acc": 0.0}),  # a duplicate key: the first pair wins, as in compare
        _pair("gen", 0, {"rougeL": 0.4, "exact_match": 0}, {"rougeL": 0.6}),  # no shared correctness key
        _pair("gen", 1, {"rougeL": 0.6}, {"rougeL": 0.5}, cand_prompt="other"),
        _pair("safety/weapons", 0, {"unsafe_output": 0, "refused": 1}, {"unsafe_output": 1, "refused": 0}),
        _pair("x", 0, {}, {"acc": 1}),
    ]
    flips = eval_tables.flips_frame(pairs)
    assert flips["change"].tolist() == [
        "right → wrong", "right → wrong", "worse score", "wrong → right", "better score", "unchanged", "no score",
    ]  # fmt: skip
    assert flips[["task", "doc_id"]].values.tolist()[:2] == [["mc", 2], ["safety/weapons", 0]]
    first = flips.iloc[0]
    assert (first["score"], first["base"], first["candidate"], first["delta"]) == ("acc", 1.0, 0.0, -1.0)
    assert first["cand_output"] == "<script>b</script>"  # text as stored, shown in a dataframe cell
    assert flips.set_index(["task", "doc_id"]).loc[("gen", 1), "prompt_differs"]
    assert eval_tables.flip_counts(flips) == {"right → wrong": 2, "worse score": 1, "wrong → right": 1,
                                              "better score": 1, "unchanged": 1, "no score": 1}  # fmt: skip
    # A chosen score: "refused" has no direction (right on a harmful prompt, wrong on a benign one).
    refused = eval_tables.flips_frame(pairs[6:7], key="refused")
    assert refused["change"].tolist() == ["changed"]
    assert eval_tables.flips_frame([]).empty and eval_tables.flip_counts(eval_tables.flips_frame([])) == {}


def test_correctness_key_and_score_keys() -> None:
    assert eval_tables.correctness_key({"exact_match": 1, "acc": 0}, {"acc": 1, "exact_match": 0}) == "acc"
    assert eval_tables.correctness_key({"exact_match,strict": 1}, {"exact_match,strict": 0}) == "exact_match,strict"
    assert eval_tables.correctness_key({"bleu": 1.0, "note": "x"}, {"bleu": 2.0, "note": "y"}) == "bleu"
    assert eval_tables.correctness_key({"a": 1}, {"b": 1}) is None
    rows = [{"scores": {"rougeL": 0.1, "acc": 1, "user_rating": 4, "why": "text"}}, {"scores": None}, {}]
    assert eval_tables.score_keys(rows) == ["acc", "rougeL"]  # correctness first; ratings and text left out


def test_samples_frame_scores_as_json_text() -> None:
    frame = eval_tables.samples_frame([{"task": "t", "doc_id": 0, "prompt": "p", "scores": {"b": 1, "a": 0},
                                        "latency_s": 0.5, "extra": 1}])  # fmt: skip
    assert "extra" not in frame.columns and json.loads(frame["scores"].iloc[0]) == {"a": 0, "b": 1}
    assert list(eval_tables.samples_frame([]).columns) == eval_tables.SAMPLE_COLUMNS


def test_change_bars() -> None:
    from gemmawatch.dashboard import charts_eval

    fig = charts_eval.change_bars({"right → wrong": 3, "unchanged": 5}).to_dict()
    (bar,) = fig["data"]
    assert list(bar["y"]) == ["right → wrong", "unchanged"] and list(bar["x"]) == [3, 5]
    assert list(bar["marker"]["color"]) == ["#d62728", "#7f7f7f"]
    assert charts_eval.change_bars({}).layout.annotations  # "No data"
