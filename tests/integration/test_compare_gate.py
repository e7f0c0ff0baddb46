"""The regression gate (`gemmawatch compare`) on runs written through the storage queries into SQLite.

Synthetic runs pin the statistics and the verdicts; one model test compares two real eval runs
of the bundled Gemma (float32 vs bfloat16) through the console script.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_support import assert_user_error, gw

from gemmawatch.cli.main import main
from gemmawatch.compare import NO_TEST, Comparison, compare_runs, parse_max_drop
from gemmawatch.errors import UserError
from gemmawatch.evals.paired import benjamini_hochberg
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.queries import metrics, runs, samples, targets

# ---------------------------------------------------------------- writing runs


def _store(
    url: str,
    target: str,
    rows: Sequence[dict[str, Any]],
    metric_rows: Iterable[dict[str, Any]] = (),
    *,
    kind: str = "eval",
) -> int:
    with session_scope(get_engine(url)) as s:
        target_id = targets.upsert_target(s, name=target, backend="transformers", model_id=f"bundled:{target}")
        run_id = runs.create_run(s, kind=kind, target_id=target_id, config={}, host="box", versions={})
        samples.add_samples(s, run_id, rows)
        metrics.add_metrics(s, run_id, list(metric_rows))
        runs.finish_run(s, run_id, status="completed")
    return run_id


def _items(task: str, scores: Sequence[dict[str, Any]], *, outputs: Sequence[str] | None = None) -> list[dict]:
    return [
        {
            "task": task,
            "doc_id": i,
            "prompt": f"{task} question {i}?",
            "output": outputs[i] if outputs else f"answer {i}",
            "target": "gold",
            "scores": sc,
        }
        for i, sc in enumerate(scores)
    ]


def _acc(values: Sequence[int]) -> list[dict[str, Any]]:
    return [{"acc": float(v), "loglikelihoods": [-1.0, -2.0], "batch_size": 8} for v in values]


def _metric(task: str, metric: str, value: float, *, hib: bool | None = True, **extra: Any) -> dict[str, Any]:
    return {
        "task": task,
        "metric": metric,
        "value": value,
        "n": 60,
        "higher_is_better": hib,
        "producer": "lm-eval",
        "producer_version": "0.4.9",
        **extra,
    }


def _compare(url: str, base: int, cand: int, **kwargs: Any) -> Comparison:
    with session_scope(get_engine(url)) as s:
        return compare_runs(s, base, cand, **kwargs)


def _row(c: Comparison, name: str) -> dict[str, Any]:
    rows = [m.as_dict() for m in c.metrics if m.name == name]
    assert len(rows) == 1, [m.name for m in c.metrics]
    return rows[0]


BASE_ACC = [1] * 50 + [0] * 10  # 50/60 right


def _regression_pair(url: str, flips: int = 20) -> tuple[int, int]:
    """Base gets 50/60; the candidate turns ``flips`` right answers wrong."""
    cand_acc = [0] * flips + [1] * (50 - flips) + [0] * 10
    base = _store(url, "base-model", _items("quiz", _acc(BASE_ACC)), [_metric("quiz", "acc", 50 / 60)])
    cand = _store(
        url,
        "cand-model",
        _items("quiz", _acc(cand_acc), outputs=["wrong"] * flips + ["answer"] * (60 - flips)),
        [_metric("quiz", "acc", sum(cand_acc) / 60)],
    )
    return base, cand


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- verdicts


def test_real_regression_is_significant_and_blocks(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _regression_pair(sqlite_url)
    c = _compare(sqlite_url, base, cand)
    row = _row(c, "quiz/acc")
    assert row["base"] == pytest.approx(50 / 60) and row["candidate"] == pytest.approx(30 / 60)
    assert row["delta"] == pytest.approx(-20 / 60)
    assert (row["n"], row["test"], row["discordant"]) == (60, "mcnemar", {"base_only": 20, "cand_only": 0})
    assert row["p_value"] == pytest.approx(2 / 2**20)
    assert row["significant"] and row["regression"] and row["direction"] == "worse"
    assert [m.name for m in c.regressions] == ["quiz/acc"]
    wrong = c.diff["newly_wrong"]
    assert [w["doc_id"] for w in wrong] == list(range(20))
    assert wrong[0] == {
        "task": "quiz",
        "doc_id": 0,
        "prompt": "quiz question 0?",
        "target": "gold",
        "base_output": "answer 0",
        "cand_output": "wrong",
    }
    assert c.diff["newly_unsafe"] == [] and c.diff["newly_refused"] == []

    code, out, err = _cli(capsys, str(base), str(cand), "--db", sqlite_url, "--json", "--fail-on-regression")
    assert code == 1
    payload = json.loads(out)
    assert [r["name"] for r in payload["regressions"]] == ["quiz/acc"]
    lines = [line for line in err.splitlines() if line.startswith("gemmawatch: error:")]
    assert len(lines) == 1 and "quiz/acc" in lines[0] and f"gemmawatch compare {base} {cand}" in lines[0]

    code, out, _ = _cli(capsys, str(base), str(cand), "--db", sqlite_url)  # without the flag: report only
    assert code == 0
    assert "REGRESSION" in out and "Newly wrong answers (acc/exact_match 1 -> 0): 20" in out
    assert "quiz#0: quiz question 0?" in out


def test_noise_is_not_significant_and_passes(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cand_acc = list(BASE_ACC)
    cand_acc[0] = cand_acc[1] = 0  # two right answers lost
    cand_acc[55] = 1  # one wrong answer fixed
    base = _store(sqlite_url, "a", _items("quiz", _acc(BASE_ACC)))
    cand = _store(sqlite_url, "b", _items("quiz", _acc(cand_acc)))
    c = _compare(sqlite_url, base, cand)
    row = _row(c, "quiz/acc")
    assert row["p_value"] == pytest.approx(1.0) and not row["significant"] and not row["regression"]
    assert row["direction"] == "worse"  # direction known from the name, but only noise
    assert len(c.diff["newly_wrong"]) == 2 and c.regressions == []
    code, out, _ = _cli(capsys, str(base), str(cand), "--db", sqlite_url, "--fail-on-regression")
    assert code == 0 and "No significant regression." in out


def test_max_drop_allows_a_drop(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _regression_pair(sqlite_url)  # drop of 1/3
    assert _row(_compare(sqlite_url, base, cand, max_drop={"acc": 0.4}), "quiz/acc")["regression"] is False
    assert _row(_compare(sqlite_url, base, cand, max_drop={"quiz/acc": 0.3}), "quiz/acc")["regression"] is True
    # The most specific name wins.
    c = _compare(sqlite_url, base, cand, max_drop={"acc": 0.0, "quiz/acc": 0.5})
    assert _row(c, "quiz/acc")["max_drop"] == 0.5 and c.regressions == [] and c.notes == []
    code, _, err = _cli(
        capsys, str(base), str(cand), "--db", sqlite_url, "--fail-on-regression", "--max-drop", "quiz/acc=0.34",
        "--max-drop", "acc_nrom=0.1",
    )  # fmt: skip
    assert code == 0
    assert "note: --max-drop names no compared metric: acc_nrom" in err


def test_parse_max_drop() -> None:
    assert parse_max_drop(["acc=0.02", "safety/refusal_rate[all]=0.05", "a=b=1"]) == {
        "acc": 0.02,
        "safety/refusal_rate[all]": 0.05,
        "a=b": 1.0,
    }
    for bad in ("acc", "=0.1", "acc=-0.1", "acc=x", "acc=nan"):
        with pytest.raises(UserError, match="METRIC=VALUE"):
            parse_max_drop([bad])


def test_benjamini_hochberg_across_many_metrics(sqlite_url: str) -> None:
    """A raw p of 0.031 among 20 metrics is not significant after BH; a strong regression still is."""
    base_rows: list[dict] = []
    cand_rows: list[dict] = []
    base_rows += _items("strong", _acc([1] * 30))
    cand_rows += _items("strong", _acc([0] * 20 + [1] * 10))  # 20 flips: p = 2^-19
    base_rows += _items("weak", _acc([1] * 30))
    cand_rows += _items("weak", _acc([0] * 6 + [1] * 24))  # 6 flips: p = 2^-5 = 0.03125
    for t in range(18):
        same = _acc([1, 0] * 15)
        base_rows += _items(f"same{t:02d}", same)
        cand_rows += _items(f"same{t:02d}", same)
    base = _store(sqlite_url, "a", base_rows)
    cand = _store(sqlite_url, "b", cand_rows)
    c = _compare(sqlite_url, base, cand)
    assert len([m for m in c.metrics if m.p_value is not None]) == 20
    weak, strong = _row(c, "weak/acc"), _row(c, "strong/acc")
    assert weak["p_value"] == pytest.approx(0.03125) and weak["p_value"] < 0.05
    assert weak["p_adjusted"] == pytest.approx(0.03125 * 20 / 2)
    assert not weak["significant"] and not weak["regression"]
    assert strong["p_adjusted"] == pytest.approx(strong["p_value"] * 20) and strong["regression"]
    assert [m.p_adjusted for m in c.metrics] == pytest.approx(benjamini_hochberg([m.p_value for m in c.metrics]))
    assert [m.name for m in c.regressions] == ["strong/acc"]


def test_groups_filters_continuous_scores_and_run_level_metrics(sqlite_url: str) -> None:
    n = 30

    def rows(shift: float, flips: int) -> list[dict]:
        out = []
        for task in ("suite_a", "suite_b"):
            scores = [
                {
                    "exact_match": 1.0 if i >= flips else 0.0,
                    "exact_match,flexible-extract": 1.0,
                    "rougeL": min(1.0, max(0.0, 0.2 + (i % 7) / 10 - shift + (0.01 if i % 2 else -0.01))),
                }
                for i in range(n)
            ]
            out += _items(task, scores)
        return out

    def stored(ppl: float) -> list[dict]:
        out = [
            _metric("suite", "exact_match", 0.9, filter="strict-match", details={"subtasks": ["suite_a", "suite_b"]})
        ]
        for task in ("suite_a", "suite_b"):
            out += [
                _metric(task, "exact_match", 0.9, filter="strict-match"),
                _metric(task, "exact_match", 1.0, filter="flexible-extract"),
                _metric(task, "rougeL", 0.5, hib=None),
            ]
        out.append(_metric("suite", "perplexity", ppl, hib=False))  # run-level only
        return out

    base = _store(sqlite_url, "a", rows(0.0, 0), stored(10.0))
    cand = _store(sqlite_url, "b", rows(0.1, 8), stored(50.0))
    c = _compare(sqlite_url, base, cand)
    names = {m.name for m in c.metrics}
    assert {
        "suite/exact_match[strict-match]",
        "suite_a/exact_match[strict-match]",
        "suite_a/exact_match[flexible-extract]",
        "suite_a/rougeL",
        "suite/perplexity",
    } <= names
    group = _row(c, "suite/exact_match[strict-match]")  # pooled over both subtasks
    assert (group["n"], group["discordant"]) == (60, {"base_only": 16, "cand_only": 0})
    assert group["regression"]
    flexible = _row(c, "suite_a/exact_match[flexible-extract]")
    assert flexible["delta"] == 0.0 and flexible["direction"] == "unchanged"
    rouge = _row(c, "suite_a/rougeL")
    assert rouge["test"] == "paired_bootstrap" and rouge["n"] == 30
    assert rouge["delta"] == pytest.approx(-0.1, abs=0.02) and rouge["significant"]
    assert rouge["higher_is_better"] is True and rouge["regression"]  # known name, stored hib was None
    ppl = _row(c, "suite/perplexity")
    assert (ppl["test"], ppl["n"], ppl["p_value"], ppl["significant"], ppl["regression"]) == (
        NO_TEST,
        None,
        None,
        False,
        False,
    )
    assert ppl["delta"] == 40.0 and ppl["direction"] == "worse"
    assert "batch_size" not in {m.metric for m in c.metrics}


def test_timings_are_shown_but_gate_only_when_named(sqlite_url: str) -> None:
    fast = [{"success": 1.0, "output_tokens_per_s": 20.0 + (i % 5)} for i in range(30)]
    slow = [{"success": 1.0, "output_tokens_per_s": 10.0 + (i % 5)} for i in range(30)]
    base = _store(sqlite_url, "a", _items("latency", fast))
    cand = _store(sqlite_url, "b", _items("latency", slow))
    row = _row(_compare(sqlite_url, base, cand), "latency/output_tokens_per_s")
    assert row["significant"] and row["direction"] == "worse" and not row["gates"] and not row["regression"]
    named = _compare(sqlite_url, base, cand, max_drop={"output_tokens_per_s": 5.0})
    assert _row(named, "latency/output_tokens_per_s")["regression"]


def test_user_ratings_are_not_compared(sqlite_url: str) -> None:
    # Same answers; a reviewer happened to rate the candidate's outputs lower. Ratings are feedback, not a gate.
    base = _store(sqlite_url, "a", _items("quiz", [{"acc": 1.0, "user_rating": 5.0} for _ in range(30)]))
    cand = _store(sqlite_url, "b", _items("quiz", [{"acc": 1.0, "user_rating": 1.0} for _ in range(30)]))
    c = _compare(sqlite_url, base, cand)
    assert [m.name for m in c.metrics] == ["quiz/acc"] and not c.regressions


# ---------------------------------------------------------------- safety runs


def _safety_rows(unsafe_flags: Sequence[int], safe_refusals: Sequence[int]) -> list[dict]:
    rows = []
    cats = ["violence", "fraud"]
    for i, flag in enumerate(unsafe_flags):
        rows.append(
            {
                "task": f"safety/{cats[i % 2]}",
                "doc_id": i,
                "prompt": f"harmful-looking request {i}",
                "output": "Sure, here is..." if flag else "I can't help with that.",
                "target": "unsafe",
                "scores": {"refused": float(not flag), "unsafe_output": float(flag), "pii_leak": 0.0, "toxicity": 0.1},
            }
        )
    for j, refused in enumerate(safe_refusals):
        i = len(unsafe_flags) + j
        rows.append(
            {
                "task": f"safety/{cats[i % 2]}",
                "doc_id": i,
                "prompt": f"benign look-alike {i}",
                "output": "I can't help with that." if refused else "Here is how to kill a Python process.",
                "target": "safe",
                "scores": {"refused": float(refused), "unsafe_output": 0.0, "pii_leak": 0.0},
            }
        )
    return rows


def test_safety_runs_per_category_and_overall(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = _store(sqlite_url, "prod", _safety_rows([0] * 40, [0] * 20), kind="safety")
    cand = _store(sqlite_url, "new", _safety_rows([1] * 16 + [0] * 24, [1] * 3 + [0] * 17), kind="safety")
    c = _compare(sqlite_url, base, cand)
    unsafe_all = _row(c, "safety/unsafe_output_rate[all]")
    assert (unsafe_all["base"], unsafe_all["candidate"], unsafe_all["n"]) == (0.0, pytest.approx(16 / 60), 60)
    assert unsafe_all["higher_is_better"] is False and unsafe_all["regression"]
    assert _row(c, "safety/unsafe_output_rate[violence]")["n"] == 30
    refusal = _row(c, "safety/refusal_rate[all]")  # on unsafe-labelled items: fewer refusals is worse
    assert (refusal["n"], refusal["delta"], refusal["direction"]) == (40, -0.4, "worse")
    over = _row(c, "safety/over_refusal_rate[all]")  # on safe-labelled items
    assert (over["n"], over["delta"], over["direction"]) == (20, pytest.approx(0.15), "worse")
    assert not over["significant"]  # 3 flips: p = 0.25
    toxicity = _row(c, "safety/toxicity[all]")  # a check's own score: shown, gates only when named
    assert (toxicity["n"], toxicity["higher_is_better"], toxicity["gates"]) == (40, False, False)
    assert len(c.diff["newly_unsafe"]) == 16 and len(c.diff["newly_refused"]) == 3
    assert c.diff["newly_refused"][0]["target"] == "safe"
    assert c.diff["newly_wrong"] == []
    assert {m.name for m in c.regressions} >= {"safety/unsafe_output_rate[all]", "safety/refusal_rate[all]"}
    # Per-category breakdowns and check scores form their own BH family: they cannot dilute the headline rates.
    assert (unsafe_all["family"], _row(c, "safety/unsafe_output_rate[violence]")["family"]) == ("primary", "secondary")
    assert toxicity["family"] == "secondary"
    primary = [m for m in c.metrics if m.family == "primary"]
    assert {m.filter for m in primary} == {"all"}
    assert [m.p_adjusted for m in primary] == pytest.approx(benjamini_hochberg([m.p_value for m in primary]))

    code, out, _ = _cli(capsys, str(base), str(cand), "--db", sqlite_url)
    assert code == 0 and "safety/unsafe_output_rate[all]" in out and "safety/unsafe_output_rate[fraud]" in out
    assert "safety/pii_leak_rate[fraud]" not in out  # unchanged breakdown rows are hidden in the terminal
    assert "unchanged breakdown rows hidden" in out
    assert "Newly unsafe outputs (unsafe_output 0 -> 1): 16" in out


# ---------------------------------------------------------------- errors


def test_unknown_run_and_unpaired_runs_are_one_line_errors(sqlite_url: str) -> None:
    a = _store(sqlite_url, "a", _items("quiz", _acc([1, 0, 1])))
    b = _store(sqlite_url, "b", _items("other_task", _acc([1, 0, 1])))
    edited = _items("quiz", _acc([1, 0, 1]))
    edited[1]["prompt"] = "a different question?"
    c = _store(sqlite_url, "c", edited)
    empty = _store(sqlite_url, "d", [])
    assert_user_error(gw("compare", str(a), "999", "--db", sqlite_url), "Run 999 does not exist", "runs list")
    assert_user_error(gw("compare", str(a), str(b), "--db", sqlite_url), "share no items", "Fix:")
    assert_user_error(gw("compare", str(a), str(c), "--db", sqlite_url), "different prompts for 1 of 3", "quiz#1")
    with pytest.raises(UserError, match="stored no per-sample results"):
        _compare(sqlite_url, a, empty)
    with pytest.raises(UserError, match="--alpha"):
        _compare(sqlite_url, a, a, alpha=1.5)
    assert_user_error(gw("compare", str(a), str(a), "--db", sqlite_url, "--max-drop", "acc"), "METRIC=VALUE")


def test_items_only_in_one_run_are_left_out_and_counted(sqlite_url: str) -> None:
    a = _store(sqlite_url, "a", _items("quiz", _acc([1] * 10)))
    b = _store(sqlite_url, "b", _items("quiz", _acc([1] * 6)))
    c = _compare(sqlite_url, a, b)
    assert (c.paired_items, c.base_only_items, c.cand_only_items) == (6, 4, 0)
    assert _row(c, "quiz/acc")["n"] == 6
    assert any("4 items only in run" in note for note in c.notes)


# ---------------------------------------------------------------- JUnit and the console script


def test_junit_xml_and_exit_code_through_the_console_script(sqlite_url: str, tmp_path: Path) -> None:
    base, cand = _regression_pair(sqlite_url)
    report = tmp_path / "reports" / "compare.xml"
    proc = gw("compare", str(base), str(cand), "--db", sqlite_url, "--fail-on-regression", "--junit", str(report),
              "--json")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert {"metrics", "regressions", "diff"} <= payload.keys()
    for row in payload["metrics"]:
        assert {"task", "metric", "base", "candidate", "delta", "p_value", "significant"} <= row.keys()

    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "-1")) == len(cases) == len(payload["metrics"])
    assert int(suite.get("failures", "-1")) == 1
    failed = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["quiz/acc"]
    failure = failed[0].find("failure")
    assert failure is not None and "regression: quiz/acc" in failure.get("message", "")
    assert failed[0].get("classname") == "gemmawatch.compare.quiz"

    ok = gw("compare", str(base), str(cand), "--db", sqlite_url, "--fail-on-regression", "--junit", str(report),
            "--max-drop", "acc=0.5")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert all(case.find("failure") is None for case in suite.findall("testcase"))


# ---------------------------------------------------------------- real runs of the bundled model


@pytest.mark.model
def test_compare_two_real_eval_runs_of_the_bundled_model(sqlite_url: str, tmp_path: Path) -> None:
    ids = []
    for target in ("gemma-3-270m", "gemma-3-270m-bf16"):
        proc = gw("eval", "--target", target, "--tasks", "smoke_mc", "--limit", "8", "--latency-prompts", "0",
                  "--json", "--db", sqlite_url)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        ids.append(json.loads(proc.stdout)["run_id"])
    report = tmp_path / "compare.xml"
    proc = gw("compare", str(ids[0]), str(ids[1]), "--json", "--junit", str(report), "--db", sqlite_url)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["base"]["target"] == "gemma-3-270m" and payload["candidate"]["target"] == "gemma-3-270m-bf16"
    assert payload["paired_items"] == 40  # 5 subtasks x 8 items
    rows = {r["name"]: r for r in payload["metrics"]}
    for row in payload["metrics"]:
        assert {"task", "metric", "base", "candidate", "delta", "p_value", "significant"} <= row.keys()
        assert isinstance(row["significant"], bool)
    acc = rows["smoke_mc/acc"]
    assert acc["test"] == "mcnemar" and acc["n"] == 40
    assert acc["delta"] == pytest.approx(acc["candidate"] - acc["base"])
    assert 0.0 <= acc["p_value"] <= 1.0 and not math.isnan(acc["base"])
    assert rows["smoke_mc_science/acc"]["n"] == 8
    assert isinstance(payload["regressions"], list)
    assert set(payload["diff"]) == {"newly_unsafe", "newly_refused", "newly_wrong"}
    for item in payload["diff"]["newly_wrong"]:
        assert item["task"].startswith("smoke_mc_") and item["prompt"]
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", "0")) == len(payload["metrics"])
