"""The bfcl and mgsm dataset formats: the published files as they are, other layouts, and bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gemmawatch.errors import ConfigError
from gemmawatch.evals.dataset_scoring import render_prompt
from gemmawatch.evals.datasets.loading import detect_format, limit_per_category, load_dataset
from gemmawatch.evals.quality import get_scorer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BFCL = DATA / "bfcl_simple"
MGSM = DATA / "mgsm"
needs_bfcl = pytest.mark.skipif(not BFCL.is_dir(), reason=f"BFCL data not found at {BFCL}")
needs_mgsm = pytest.mark.skipif(not MGSM.is_dir(), reason=f"MGSM data not found at {MGSM}")

QUESTION = {
    "id": "simple_python_0",
    "question": [[{"role": "user", "content": "Area of a triangle with base 10 and height 5?"}]],
    "function": [
        {
            "name": "calculate_triangle_area",
            "description": "Area of a triangle.",
            "parameters": {
                "type": "dict",
                "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
                "required": ["base", "height"],
            },
        }
    ],
}
ANSWER = {"id": "simple_python_0", "ground_truth": [{"calculate_triangle_area": {"base": [10], "height": [5]}}]}


def write_jsonl(path: Path, *rows: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- bfcl


@needs_bfcl
def test_bfcl_folder_as_published() -> None:
    assert detect_format(BFCL) == "bfcl"
    data = load_dataset(BFCL)
    assert data.name == "bfcl" and len(data.items) == 400
    assert data.scorers == [("function_call", {})] and data.chat is True
    assert sorted(Path(p).name for p in data.sources) == [
        "BFCL_v4_simple_python.jsonl",
        "possible_answer_BFCL_v4_simple_python.jsonl",
    ]
    assert all(len(digest) == 64 for digest in data.sources.values())
    first = data.items[0]
    assert (first.doc_id, first.category, first.meta) == (0, "simple_python", {"id": "simple_python_0"})
    assert first.prompt == "Find the area of a triangle with a base of 10 units and height of 5 units."
    assert json.loads(first.reference or "")[0]["calculate_triangle_area"]["base"] == [10]
    assert first.context["functions"][0]["name"] == "calculate_triangle_area"
    assert [item.doc_id for item in data.items] == list(range(400))
    prompt = render_prompt(data.prompt_template, first)
    assert prompt.startswith("You have access to functions.") and prompt.endswith(first.prompt)
    assert '"name": "calculate_triangle_area"' in prompt and "[func_name1(params_name1=params_value1" in prompt
    # The stored reference and the item's context are what the scorer needs.
    result = get_scorer("function_call").score(
        "[calculate_triangle_area(base=10, height=5)]", first.reference, **first.context
    )
    assert result.value == 1.0


def test_bfcl_one_file_and_the_upstream_layout(tmp_path: Path) -> None:
    question = write_jsonl(tmp_path / "a" / "BFCL_v4_simple_python.jsonl", QUESTION)
    write_jsonl(tmp_path / "a" / "possible_answer_BFCL_v4_simple_python.jsonl", ANSWER)
    data = load_dataset(question, "bfcl", {"name": "fc"})
    assert data.name == "fc" and [i.category for i in data.items] == ["simple_python"]
    # BFCL's repository: data/BFCL_v4_x.json with data/possible_answer/BFCL_v4_x.json
    write_jsonl(tmp_path / "b" / "BFCL_v4_live_simple.json", QUESTION)
    write_jsonl(tmp_path / "b" / "possible_answer" / "BFCL_v4_live_simple.json", ANSWER)
    data = load_dataset(tmp_path / "b", "bfcl")
    assert [i.category for i in data.items] == ["live_simple"]


def test_bfcl_system_message_goes_first(tmp_path: Path) -> None:
    row = dict(QUESTION, question=[[{"role": "system", "content": "Be terse."}, *QUESTION["question"][0]]])
    write_jsonl(tmp_path / "BFCL_v4_simple_python.jsonl", row)
    write_jsonl(tmp_path / "possible_answer_BFCL_v4_simple_python.jsonl", ANSWER)
    (item,) = load_dataset(tmp_path, "bfcl").items
    assert item.prompt == "Be terse.\n\nArea of a triangle with base 10 and height 5?"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "holds no BFCL question file"),
        ({"BFCL_v4_simple_python.jsonl": [QUESTION]}, "No accepted answers for"),
        (
            {"BFCL_v4_simple_python.jsonl": [QUESTION], "possible_answer_BFCL_v4_simple_python.jsonl": [{"id": "x"}]},
            "no field 'ground_truth'",
        ),
        (
            {
                "BFCL_v4_simple_python.jsonl": [QUESTION],
                "possible_answer_BFCL_v4_simple_python.jsonl": [dict(ANSWER, id="other")],
            },
            "id 'simple_python_0' has no answer",
        ),
        (
            {
                "BFCL_v4_simple_python.jsonl": [dict(QUESTION, question=[[], []])],
                "possible_answer_BFCL_v4_simple_python.jsonl": [ANSWER],
            },
            "not one turn",
        ),
        (
            {
                "BFCL_v4_simple_python.jsonl": [dict(QUESTION, function="f")],
                "possible_answer_BFCL_v4_simple_python.jsonl": [ANSWER],
            },
            "not a list of function docs",
        ),
        ({"BFCL_v4_simple_java.json": [QUESTION]}, "category 'simple_java'"),
        ({"BFCL_v4_irrelevance.json": [QUESTION]}, "only single-turn Python"),
    ],
)
def test_bfcl_bad_folders(tmp_path: Path, files: dict[str, list[object]], message: str) -> None:
    for name, rows in files.items():
        write_jsonl(tmp_path / name, *rows)
    with pytest.raises(ConfigError, match=message):
        load_dataset(tmp_path, "bfcl")


def test_bfcl_bad_json_names_the_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "BFCL_v4_simple_python.jsonl", QUESTION)
    with (tmp_path / "BFCL_v4_simple_python.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{oops\n")
    write_jsonl(tmp_path / "possible_answer_BFCL_v4_simple_python.jsonl", ANSWER)
    with pytest.raises(ConfigError, match=r"BFCL_v4_simple_python.jsonl line 2 is not valid JSON"):
        load_dataset(tmp_path, "bfcl")
    with pytest.raises(ConfigError, match="--prompt-field do not apply to --format bfcl"):
        load_dataset(tmp_path, "bfcl", {"prompt_field": "q"})


# ---------------------------------------------------------------- mgsm


@needs_mgsm
def test_mgsm_folder_as_published() -> None:
    assert detect_format(MGSM) == "mgsm"
    data = load_dataset(MGSM)
    languages = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
    assert data.name == "mgsm" and len(data.items) == 11 * 250
    assert sorted({item.category or "" for item in data.items}) == languages
    assert data.scorers == [("numeric_match", {})] and len(data.sources) == 11
    german = [item for item in data.items if item.category == "de"]
    assert [item.doc_id for item in german] == list(range(250))  # per language: the same problem, the same id
    assert german[0].reference == "18" and german[0].context == {"expected_language": "de"}
    assert german[0].prompt.startswith("Janets Enten")
    prompt = render_prompt(data.prompt_template, german[0])
    assert '"The answer is N"' in prompt and prompt.endswith(german[0].prompt)
    assert [item.category for item in limit_per_category(data.items, 1)] == languages


@needs_mgsm
def test_mgsm_one_language_file(tmp_path: Path) -> None:
    data = load_dataset(MGSM / "mgsm_sw.jsonl", "mgsm")
    assert len(data.items) == 250 and {item.category for item in data.items} == {"sw"}
    shutil.copy(MGSM / "mgsm_sw.jsonl", tmp_path / "swahili.jsonl")
    with pytest.raises(ConfigError, match="Cannot tell the language of 'swahili.jsonl'"):
        load_dataset(tmp_path / "swahili.jsonl", "mgsm")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"input": "2+2?"}, "no field 'target'"),
        ({"input": "2+2?", "target": ""}, "'target' is not a number"),
        ({"input": "2+2?", "target": [4]}, "'target' is not a number"),
        ({"input": "  ", "target": "4"}, "'input' is not the problem text"),
        ({"question": "2+2?", "target": "4"}, "no field 'input'"),
    ],
)
def test_mgsm_bad_lines_name_the_file_and_line(tmp_path: Path, row: dict[str, object], message: str) -> None:
    write_jsonl(tmp_path / "mgsm_xx.jsonl", {"input": "1+1?", "target": "2"}, row)
    with pytest.raises(ConfigError, match=rf"mgsm_xx.jsonl line 2: {message}"):
        load_dataset(tmp_path, "mgsm")


def test_mgsm_empty_folder_and_numbers_as_targets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no mgsm_<lang>.jsonl file"):
        load_dataset(tmp_path, "mgsm")
    write_jsonl(tmp_path / "mgsm_en.jsonl", {"input": "1+1?", "target": 2}, {"input": "half of 3?", "target": 1.5})
    assert [item.reference for item in load_dataset(tmp_path, "mgsm").items] == ["2", "1.5"]
