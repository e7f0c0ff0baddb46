"""Scoring dataset runs: templates, scorer selection, sample and metric rows; scorers on lm-eval generations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gemmawatch.collectors.backends.base import GenerationResult
from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.evals.dataset_scoring import (
    build_scorers,
    check_template,
    dataset_metrics,
    dataset_samples,
    parse_scorer_options,
    render_prompt,
    score_outputs,
    scorer_specs,
)
from gemmawatch.evals.datasets.base import DatasetItem
from gemmawatch.evals.lm_eval_scoring import score_generations


def _result(text: str, *, error: str | None = None, tokens: int = 4) -> GenerationResult:
    return GenerationResult(
        text="" if error else text,
        input_tokens=3,
        output_tokens=0 if error else tokens,
        token_source="tokenizer",
        started_at=datetime.now(UTC),
        e2e_s=0.0 if error else 0.5,
        error=error,
        error_class="RuntimeError" if error else None,
    )


ITEMS = [
    DatasetItem(0, "Capital of France?", reference="Paris", category="geo", meta={"id": "g1"}),
    DatasetItem(1, "Capital of Peru?", reference=["Lima", "Lima, Peru"], category="geo"),
    DatasetItem(2, "2+2?", reference="4", category="math"),
    DatasetItem(3, "3+3?", reference="6", category="math"),
    DatasetItem(4, "Write a poem.", reference=None, category="math"),
]
RESULTS = [
    _result("Paris"),
    _result("It is Lima."),
    _result("5"),
    _result("", error="boom"),
    _result("Roses are red"),
]


def test_templates_fill_prompt_and_context_and_leave_json_alone() -> None:
    item = DatasetItem(0, "What is 2+2?", context={"functions": [{"name": "add"}], "lang": "de"})
    template = 'Use {functions} in {lang}. Example: {"name": "f"}\nQ: {prompt}'
    check_template(template, [item])
    assert render_prompt(template, item) == 'Use [{"name": "add"}] in de. Example: {"name": "f"}\nQ: What is 2+2?'
    with pytest.raises(ConfigError, match=r"has no \{prompt\}"):
        check_template("Answer: {question}", [item])
    with pytest.raises(ConfigError, match=r"uses \{question\}, which item 0 does not have \(available: prompt, fu"):
        check_template("{prompt} {question}", [item])


def test_build_scorers_defaults_options_and_errors() -> None:
    defaults = [("exact_match", {}), ("length", {"unit": "chars"})]
    assert [s.name for s in build_scorers(None, {}, defaults)] == ["exact_match", "length"]
    (length,) = build_scorers(["length"], {}, defaults)
    assert length.args["unit"] == "chars"  # the format's own settings still apply when named
    (length,) = build_scorers(["length"], {"length": {"unit": "words"}}, defaults)
    assert length.args["unit"] == "words"
    assert scorer_specs([length])[0] == {"name": "length", "version": length.version, "args": length.args}
    with pytest.raises(UnknownNameError, match="Unknown quality scorer 'nope'. Available: .*exact_match"):
        build_scorers(["exact_match", "nope"])
    with pytest.raises(ConfigError, match="exact_match given twice"):
        build_scorers(["exact_match", "exact_match"])
    with pytest.raises(ConfigError, match="Options given for scorer rouge_l, which is not selected"):
        build_scorers(["exact_match"], {"rouge_l": {"use_stemmer": True}})
    with pytest.raises(ConfigError, match="Invalid arguments for quality scorer 'exact_match'"):
        build_scorers(["exact_match"], {"exact_match": {"bogus": 1}})
    with pytest.raises(ConfigError, match="No quality scorers selected"):
        build_scorers(None, {}, [])


def test_parse_scorer_options() -> None:
    assert parse_scorer_options(["rouge_l.use_stemmer=true", "length.unit=words", "judge.max_new_tokens=8"]) == {
        "rouge_l": {"use_stemmer": True},
        "length": {"unit": "words"},
        "judge": {"max_new_tokens": 8},
    }
    with pytest.raises(ConfigError, match="Malformed scorer option 'rouge_l'. Fix: write SCORER.KEY=VALUE"):
        parse_scorer_options(["rouge_l"])


def test_samples_and_metrics() -> None:
    scorers = build_scorers(["exact_match", "truncated"])
    scored = score_outputs(scorers, ITEMS, RESULTS, max_new_tokens=4)
    prompts = [f"Q: {i.prompt}" for i in ITEMS]
    samples = dataset_samples("qa", ITEMS, prompts, RESULTS, scored)
    assert [s["task"] for s in samples] == ["qa/geo", "qa/geo", "qa/math", "qa/math", "qa/math"]
    assert [s["doc_id"] for s in samples] == [0, 1, 2, 3, 4] and samples[0]["prompt"] == "Q: Capital of France?"
    assert samples[0]["scores"]["exact_match"] == 1.0 and samples[0]["scores"]["meta"] == {"id": "g1"}
    assert samples[1]["target"] == json.dumps(["Lima", "Lima, Peru"]) and samples[1]["scores"]["exact_match"] == 0.0
    assert samples[0]["scores"]["truncated"] == 1.0  # 4 tokens at a limit of 4
    assert samples[3]["error"] == "RuntimeError: boom" and samples[3]["scores"] == {}
    assert samples[3]["latency_s"] is None and samples[2]["latency_s"] == 0.5
    assert samples[4]["scores"]["exact_match"] is None  # no reference: unscored, with the reason in details
    assert samples[4]["scores"]["details"]["exact_match"]["reason"] == "no reference"

    metrics = dataset_metrics("qa", ITEMS, RESULTS, scorers, scored, details={"dataset": "qa"}, task_version="abc")
    by_key = {(m["task"], m["metric"]): m for m in metrics}
    assert list(dict.fromkeys(m["task"] for m in metrics)) == ["qa/geo", "qa/math", "qa"]
    overall = by_key[("qa", "exact_match")]
    assert (overall["value"], overall["n"], overall["filter"]) == (pytest.approx(1 / 3), 3, "none")
    assert overall["details"]["subtasks"] == ["qa/geo", "qa/math"]
    assert overall["details"]["unscored"] == 1 and overall["details"]["reasons"] == {"no reference": 1}
    assert overall["details"]["failed_generations"] == 1 and overall["details"]["dataset"] == "qa"
    assert overall["producer"] == "exact_match" and overall["task_version"] == "abc"
    assert 0.0 <= overall["ci_low"] <= overall["value"] <= overall["ci_high"] <= 1.0
    math_row = by_key[("qa/math", "exact_match")]
    assert (math_row["value"], math_row["n"]) == (0.0, 1) and "subtasks" not in math_row["details"]
    assert by_key[("qa/math", "truncated")]["n"] == 2


def test_items_without_categories_give_one_task() -> None:
    items = [DatasetItem(0, "a", reference="a"), DatasetItem(1, "b", reference="c")]
    results = [_result("a"), _result("b")]
    scorers = build_scorers(["exact_match"])
    scored = score_outputs(scorers, items, results, max_new_tokens=16)
    assert {s["task"] for s in dataset_samples("plain", items, ["a", "b"], results, scored)} == {"plain"}
    (row,) = dataset_metrics("plain", items, results, scorers, scored)
    assert (row["task"], row["value"], row["n"]) == ("plain", 0.5, 2) and "subtasks" not in row["details"]


def test_all_failed_scores_nothing() -> None:
    scorers = build_scorers(["exact_match"])
    results = [_result("", error="x")]
    scored = score_outputs(scorers, ITEMS[:1], results, max_new_tokens=4)
    assert scored == {"exact_match": [None]}
    assert dataset_metrics("qa", ITEMS[:1], results, scorers, scored) == []


def _lm_eval_raw() -> dict[str, Any]:
    return {
        "configs": {
            "gen": {"output_type": "generate_until", "generation_kwargs": {"max_gen_toks": 8}},
            "mc": {"output_type": "multiple_choice"},
        },
        "versions": {"gen": 1.0, "mc": 2},
        "samples": {
            "gen": [{"doc_id": 0, "target": "Paris"}, {"doc_id": 1, "target": ["Lima", "lima"]}],
            "mc": [{"doc_id": 0, "target": 1}],
        },
    }


def test_scorers_on_lm_eval_generations() -> None:
    def row(task: str, doc_id: int, output: str, scores: dict[str, float], tokens: int | None) -> dict[str, Any]:
        return {
            "task": task,
            "doc_id": doc_id,
            "prompt": "Q",
            "output": output,
            "scores": scores,
            "output_tokens": tokens,
        }

    samples = [
        row("gen", 0, "Paris", {"exact_match": 0.0}, 8),
        row("gen", 1, "Quito", {"exact_match": 0.0}, 2),
        row("mc", 0, "b", {"acc": 1.0}, None),
    ]
    rows = score_generations(_lm_eval_raw(), samples, build_scorers(["exact_match", "truncated"]))
    assert samples[0]["scores"] == {"exact_match": 0.0, "exact_match,quality": 1.0, "truncated,quality": 1.0}
    assert samples[1]["scores"]["exact_match,quality"] == 0.0 and samples[1]["scores"]["truncated,quality"] == 0.0
    assert samples[2]["scores"] == {"acc": 1.0}  # multiple choice: no generation to score
    by_metric = {r["metric"]: r for r in rows}
    assert set(by_metric) == {"exact_match", "truncated"}
    em = by_metric["exact_match"]
    assert (em["task"], em["filter"], em["value"], em["n"], em["task_version"]) == ("gen", "quality", 0.5, 2, "1.0")
    assert score_generations(_lm_eval_raw(), samples, []) == []


def test_scorers_on_a_recorded_lm_eval_run() -> None:
    """The recorded smoke run (tests/data): only smoke_gen generates; its rows pair with lm-eval's own."""
    from pathlib import Path

    from gemmawatch.evals.lm_eval_results import metric_rows, sample_rows

    raw = json.loads((Path(__file__).parents[1] / "data" / "lm_eval_smoke_limit3.json").read_text())
    samples = sample_rows(raw)
    rows = score_generations(raw, samples, build_scorers(["token_f1", "repetition"]))
    assert {(r["task"], r["metric"], r["filter"]) for r in rows} <= {
        ("smoke_gen", "token_f1", "quality"),
        ("smoke_gen", "repetition", "quality"),
    }
    f1 = next(r for r in rows if r["metric"] == "token_f1")
    assert f1["n"] == 3 and f1["producer"] == "token_f1" and 0.0 <= f1["value"] <= 1.0
    gen = [s for s in samples if s["task"] == "smoke_gen"]
    assert all("token_f1,quality" in s["scores"] and "exact_match" in s["scores"] for s in gen)
    assert not any("token_f1,quality" in s["scores"] for s in samples if s["task"] != "smoke_gen")
    lm_eval_keys = {(m["task"], m["metric"], m["filter"]) for m in metric_rows(raw)}
    assert not lm_eval_keys & {(r["task"], r["metric"], r["filter"]) for r in rows}  # no collision


def test_cli_score_table() -> None:
    from gemmawatch.cli.commands_eval import score_table

    def row(task: str, metric: str, value: float, n: int) -> dict[str, Any]:
        return {"task": task, "metric": metric, "value": value, "ci_low": 0.0, "ci_high": 1.0, "n": n}

    headers, rows = score_table([row("qa/geo", "exact_match", 0.5, 2), row("qa", "exact_match", 0.25, 4),
                                 row("qa", "length", 12.0, 4)])  # fmt: skip
    assert headers == ["task", "exact_match", "length"]
    assert rows == [["qa/geo", "0.5 [0, 1] n=2", "-"], ["qa", "0.25 [0, 1] n=4", "12 [0, 1] n=4"]]
