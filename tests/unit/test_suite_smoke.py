"""The bundled offline ``smoke`` suite: item quality, lm-eval discovery and CWD-independent loading."""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gemmawatch.errors import UserError
from gemmawatch.evals.suites import (
    GEN_PROMPT_TEMPLATE,
    MC_SUBJECTS,
    SMOKE_TASKS,
    SUITES,
    load_items,
    smoke_prompts,
    suite_dir,
)

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _utils() -> ModuleType:
    """Import smoke/utils.py by path, the way lm-eval's ``!function`` does."""
    spec = importlib.util.spec_from_file_location("smoke_utils_under_test", suite_dir() / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm_question(text: str) -> str:
    return " ".join(text.lower().split())


# --- items ---


def test_mc_items_counts_and_schema() -> None:
    items = load_items("mc")
    assert len(items) >= 60
    per_subject = Counter(item["subject"] for item in items)
    assert set(per_subject) == set(MC_SUBJECTS)
    assert len(per_subject) >= 4
    assert min(per_subject.values()) >= 15
    for item in items:
        assert set(item) == {"id", "question", "choices", "answer", "subject"}, item["id"]
        assert isinstance(item["question"], str) and item["question"].strip()
        assert isinstance(item["choices"], list) and len(item["choices"]) == 4, item["id"]
        assert all(isinstance(c, str) and c.strip() for c in item["choices"]), item["id"]
        assert len({c.strip().lower() for c in item["choices"]}) == 4, f"duplicate choice in {item['id']}"
        assert isinstance(item["answer"], int) and 0 <= item["answer"] < 4, item["id"]


def test_gen_items_counts_and_schema() -> None:
    items = load_items("gen")
    assert len(items) >= 30
    for item in items:
        assert set(item) == {"id", "question", "answer", "aliases"}, item["id"]
        assert isinstance(item["answer"], str) and 1 <= len(item["answer"].split()) <= 3, item["id"]
        assert isinstance(item["aliases"], list) and all(isinstance(a, str) and a for a in item["aliases"])


def test_ids_and_questions_are_unique_across_the_suite() -> None:
    items = load_items("mc") + load_items("gen")
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    questions = [_norm_question(item["question"]) for item in items]
    duplicates = [q for q, n in Counter(questions).items() if n > 1]
    assert duplicates == []


def test_answer_positions_are_balanced() -> None:
    items = load_items("mc")
    positions = Counter(item["answer"] for item in items)
    assert set(positions) == {0, 1, 2, 3}
    assert max(positions.values()) / len(items) <= 0.40
    for subject in MC_SUBJECTS:
        subject_positions = Counter(i["answer"] for i in items if i["subject"] == subject)
        assert len(subject_positions) == 4, f"{subject} never uses some answer letter"


def test_load_items_rejects_unknown_kind() -> None:
    with pytest.raises(UserError, match="unknown smoke item kind"):
        load_items("essay")  # type: ignore[arg-type]


# --- prompts and suite registry ---


def test_smoke_prompts_match_the_gen_task_format() -> None:
    prompts = smoke_prompts()
    items = load_items("gen")
    assert len(prompts) == len(items)
    assert prompts[0] == GEN_PROMPT_TEMPLATE.format(question=items[0]["question"])
    assert all(p.startswith("Question: ") and p.endswith("\nAnswer:") for p in prompts)
    assert smoke_prompts(3) == prompts[:3]
    assert smoke_prompts(0) == []
    with pytest.raises(UserError):
        smoke_prompts(-1)
    yaml_text = (suite_dir() / "smoke_gen.yaml").read_text(encoding="utf-8")
    assert 'doc_to_text: "Question: {{question}}\\nAnswer:"' in yaml_text


def test_suites_mapping_and_shipped_files() -> None:
    assert SUITES["smoke"] == SMOKE_TASKS
    assert "smoke_gen" in SMOKE_TASKS
    assert {f"smoke_mc_{s}" for s in MC_SUBJECTS} <= set(SMOKE_TASKS)
    # pyproject ships smoke/*.yaml, *.jsonl, *.py only: nothing else may be needed at runtime.
    shipped = {p.name for p in suite_dir().iterdir() if p.suffix in {".yaml", ".jsonl", ".py"}}
    assert {"smoke.yaml", "smoke_mc.yaml", "smoke_gen.yaml", "mc.jsonl", "gen.jsonl", "utils.py"} <= shipped
    for task in SMOKE_TASKS:
        text = (suite_dir() / f"{task}.yaml").read_text(encoding="utf-8")
        assert "version: 1.0" in text, task


# --- alias-aware exact match ---


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        (" Cold", True),
        ("cold.", True),
        ("  COLD!  ", True),
        ("chilly", True),  # alias
        ("Chilly.", True),
        ("hot", False),
        ("cold and wet", False),
        ("", False),
    ],
)
def test_is_match_accepts_answer_and_aliases(prediction: str, expected: bool) -> None:
    doc = {"answer": "cold", "aliases": ["chilly"]}
    assert _utils().is_match(prediction, doc) is expected


def test_process_gen_results_scores_lm_eval_shapes() -> None:
    utils = _utils()
    doc = {"answer": "4", "aliases": ["four"]}
    assert utils.process_gen_results(doc, [" 4"]) == {"exact_match": 1.0}
    assert utils.process_gen_results(doc, [" Four."]) == {"exact_match": 1.0}
    assert utils.process_gen_results(doc, [["4"]]) == {"exact_match": 1.0}
    assert utils.process_gen_results(doc, [" 5"]) == {"exact_match": 0.0}
    assert utils.process_gen_results(doc, []) == {"exact_match": 0.0}
    assert utils.normalize("Fifty-Two!") == "fifty two"


def test_every_gen_answer_matches_itself_and_its_aliases() -> None:
    utils = _utils()
    for item in load_items("gen"):
        for accepted in [item["answer"], *item["aliases"]]:
            assert utils.is_match(f" {accepted}.", item), item["id"]


# --- lm-eval discovery and loading ---


def _walk(node: dict[Any, Any]) -> dict[str, Any]:
    leaves: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            leaves.update(_walk(value))
        else:
            leaves[str(key)] = value
    return leaves


def test_lm_eval_builds_the_suite_from_another_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lm_eval_tasks = pytest.importorskip("lm_eval.tasks")
    monkeypatch.chdir(tmp_path)
    tm = lm_eval_tasks.TaskManager(include_path=str(suite_dir()))
    assert {"smoke", "smoke_mc", *SMOKE_TASKS} <= set(tm.all_tasks)

    leaves = _walk(lm_eval_tasks.get_task_dict(["smoke"], tm))
    assert set(leaves) == set(SMOKE_TASKS)
    mc_items = load_items("mc")
    for subject in MC_SUBJECTS:
        docs = list(leaves[f"smoke_mc_{subject}"].test_docs())
        assert len(docs) == sum(1 for i in mc_items if i["subject"] == subject)
        assert all(doc["subject"] == subject for doc in docs)
    gen_task = leaves["smoke_gen"]
    gen_docs = list(gen_task.test_docs())
    assert len(gen_docs) == len(load_items("gen"))
    assert gen_task.doc_to_text(gen_docs[0]) == smoke_prompts(1)[0]
    assert gen_task.config.generation_kwargs["until"] == ["\n"]
    mc_task = leaves["smoke_mc_arithmetic"]
    first = next(iter(mc_task.test_docs()))
    assert mc_task.doc_to_choice(first) == first["choices"]
    assert mc_task.doc_to_target(first) == first["answer"]
    assert str(mc_task.VERSION) == "1.0"
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory
