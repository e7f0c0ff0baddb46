"""The generic ``jsonl``/``csv`` dataset formats, format detection and per-category limits."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.errors import ConfigError, UnknownNameError, UserError
from gemmawatch.evals.datasets import DATASET_FORMATS
from gemmawatch.evals.datasets.base import DatasetItem
from gemmawatch.evals.datasets.generic import load_csv, load_jsonl
from gemmawatch.evals.datasets.loading import detect_format, limit_per_category, load_dataset

ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_items_references_categories_and_ids(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "qa.jsonl",
        '{"q": "2+2?", "a": 4, "c": "Word Problems", "id": "x1"}\n'
        "\n"
        '{"q": "Capital of France?", "a": ["Paris", "paris, France"], "c": "", "id": 7}\n'
        '{"q": "Open question", "a": null, "c": "Word Problems", "id": "x3"}\n',
    )
    data = load_jsonl(path, prompt_field="q", reference_field="a", category_field="c", id_field="id")
    assert data.name == "qa" and data.chat and data.prompt_template == "{prompt}"
    assert data.sources == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
    assert [(i.doc_id, i.prompt, i.reference, i.category, i.meta) for i in data.items] == [
        (0, "2+2?", "4", "word_problems", {"id": "x1"}),
        (1, "Capital of France?", ["Paris", "paris, France"], "uncategorised", {"id": 7}),
        (2, "Open question", None, "word_problems", {"id": "x3"}),
    ]
    assert [name for name, _ in data.scorers] == ["exact_match", "token_f1"]


def test_reference_free_defaults_and_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "prompts.v2.jsonl", '{"prompt": "Write a haiku.", "extra": 1}\n')
    data = load_jsonl(path, prompt_field="prompt", name="haiku")
    assert data.name == "haiku" and data.items[0].reference is None and data.items[0].category is None
    assert [name for name, _ in data.scorers] == ["length", "repetition"]
    assert load_jsonl(path, prompt_field="prompt").name == "prompts.v2"


def test_csv_and_tsv(tmp_path: Path) -> None:
    csv_path = _write(
        tmp_path, "d.csv", '\ufeffquestion,answer,topic\n"Hello, world?",hi,Greetings\n\nWhat is 1+1?,,Math\n'
    )
    data = load_csv(csv_path, prompt_field="question", reference_field="answer", category_field="topic")
    assert [(i.doc_id, i.prompt, i.reference, i.category) for i in data.items] == [
        (0, "Hello, world?", "hi", "greetings"),
        (1, "What is 1+1?", None, "math"),  # an empty CSV cell is no reference
    ]
    tsv = load_csv(_write(tmp_path, "d.tsv", "p\tr\nA, B\tb\n"), prompt_field="p", reference_field="r")
    assert [(i.prompt, i.reference) for i in tsv.items] == [("A, B", "b")]


@pytest.mark.parametrize(
    ("name", "text", "kwargs", "fragments"),
    [
        ("d.jsonl", '{"q": "a"}\n', {"prompt_field": None}, ["--format jsonl needs --prompt-field"]),
        ("d.jsonl", '{"q": "a"}\n{"q": \n', {}, ["d.jsonl line 2 is not valid JSON", "one JSON object"]),
        ("d.jsonl", '[{"q": "a"}]\n', {}, ["line 1 is a JSON array, not an object"]),
        ("d.jsonl", '{"q": "a"}\n{"text": "b"}\n', {}, ["line 2: no field 'q'", "'text'", "--prompt-field"]),
        ("d.jsonl", '{"q": "a"}\n', {"reference_field": "a"}, ["line 1: no field 'a'", "--reference-field"]),
        ("d.jsonl", '{"q": "a"}\n', {"category_field": "c"}, ["no field 'c'", "--category-field"]),
        ("d.jsonl", '{"q": "a"}\n', {"id_field": "id"}, ["no field 'id'", "--id-field"]),
        ("d.jsonl", '{"q": "  "}\n', {}, ["line 1: field 'q' is empty"]),
        ("d.jsonl", '{"q": ["a"]}\n', {}, ["line 1: field 'q' is list, not text"]),
        ("d.jsonl", '{"q": "a", "a": {"x": 1}}\n', {"reference_field": "a"}, ["field 'a' is a JSON dict"]),
        ("d.jsonl", '{"q": "a", "a": [["x"]]}\n', {"reference_field": "a"}, ["field 'a' is a list holding"]),
        ("d.jsonl", "\n \n", {}, ["has no items", "'q'"]),
        ("d.jsonl", '{"q": "a"}\n', {"name": "a/b"}, ["contains '/'"]),
        ("d.csv", "", {}, ["has no items", "header row"]),
        ("d.csv", "text\nhello\n", {}, ["d.csv has no column 'q'", "'text'", "--prompt-field"]),
        ("d.csv", "q\nhello\n", {"reference_field": "ref"}, ["no column 'ref'", "--reference-field"]),
        ("d.csv", "q,r\nhello,x,extra\n", {"reference_field": "r"}, ["line 2 has more cells"]),
    ],
)
def test_bad_files_are_one_line_config_errors(
    tmp_path: Path, name: str, text: str, kwargs: dict[str, Any], fragments: list[str]
) -> None:
    path = _write(tmp_path, name, text)
    loader = load_csv if name.endswith(".csv") else load_jsonl
    with pytest.raises(ConfigError) as info:
        loader(path, **{"prompt_field": "q", **kwargs})
    message = str(info.value)
    assert "\n" not in message and "Fix:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file_folder_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_jsonl(tmp_path / "nope.jsonl", prompt_field="q")
    with pytest.raises(ConfigError, match="is a folder"):
        load_csv(tmp_path, prompt_field="q")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"q": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_jsonl(bad, prompt_field="q")


def test_registered_formats_and_detection(tmp_path: Path) -> None:
    assert {"jsonl", "csv"} <= set(DATASET_FORMATS.names())
    assert DATASET_FORMATS.get("jsonl") is load_jsonl and DATASET_FORMATS.get("csv") is load_csv
    for name, fmt in (("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("a.csv", "csv"), ("a.tsv", "csv")):
        assert detect_format(_write(tmp_path, name, "")) == fmt
    bfcl = tmp_path / "bfcl"
    bfcl.mkdir()
    (bfcl / "BFCL_v4_simple_python.jsonl").write_text("")
    mgsm = tmp_path / "mgsm"
    mgsm.mkdir()
    (mgsm / "mgsm_de.jsonl").write_text("")
    assert (detect_format(bfcl), detect_format(mgsm)) == ("bfcl", "mgsm")
    with pytest.raises(ConfigError, match="Cannot tell the format of .*a.txt.* Fix: pass --format"):
        detect_format(_write(tmp_path, "a.txt", ""))
    with pytest.raises(ConfigError, match="Cannot tell the format of folder"):
        detect_format(tmp_path)  # holds only the folders above
    with pytest.raises(ConfigError, match="does not exist"):
        detect_format(tmp_path / "nope.jsonl")


def test_load_dataset_passes_only_given_options(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", '{"q": "a", "r": "b"}\n')
    data = load_dataset(path, None, {"prompt_field": "q", "reference_field": "r", "category_field": None})
    assert data.items[0].reference == "b"
    with pytest.raises(UnknownNameError, match="Unknown dataset format 'nope'. Available: .*csv.*jsonl"):
        load_dataset(path, "nope", {"prompt_field": "q"})
    with pytest.raises(ConfigError, match="--shots do not apply to --format jsonl"):
        load_dataset(path, "jsonl", {"prompt_field": "q", "--shots": 3})


def test_limit_per_category_keeps_dataset_order() -> None:
    items = [DatasetItem(i, f"p{i}", category=c) for i, c in enumerate(["a", "b", "a", None, "a", "b", None])]
    assert [i.doc_id for i in limit_per_category(items, 1)] == [0, 1, 3]
    assert [i.doc_id for i in limit_per_category(items, 2)] == [0, 1, 2, 3, 5, 6]
    assert limit_per_category(items, None) == items
    with pytest.raises(UserError, match="--limit must be at least 1"):
        limit_per_category(items, 0)


@pytest.mark.skipif(not GSM8K.is_file(), reason="GSM8K test file not present next to the repository")
def test_gsm8k_reads_as_is() -> None:
    data = load_jsonl(GSM8K, prompt_field="question", reference_field="answer")
    assert data.name == "test" and len(data.items) == 1319
    assert isinstance(data.items[0].reference, str) and data.items[0].reference.endswith("#### 18")
