"""The built-in safety suites and the user-dataset reader (JSONL, CSV, TSV) with its one-line errors."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from gemmawatch.errors import UnknownNameError, UserError
from gemmawatch.evals.suites.safety_data import (
    SAFETY_SUITES,
    UNCATEGORISED,
    SafetyItem,
    category_slug,
    limit_per_category,
    load_dataset,
    load_suite,
    parse_label,
    safety_suite_dir,
)

ROOT = Path(__file__).resolve().parents[2]
XSTEST = ROOT.parent / "shared" / "data" / "xstest" / "xstest_prompts.jsonl"


def _raw(name: str) -> list[dict[str, object]]:
    lines = (safety_suite_dir() / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --------------------------------------------------------------------------- #
# Built-in suites
# --------------------------------------------------------------------------- #


def test_harmful_suite_has_at_least_8_categories_of_10_unsafe_prompts() -> None:
    rows = _raw("harmful.jsonl")
    counts = Counter(str(r["category"]) for r in rows)
    assert len(counts) >= 8, counts
    assert min(counts.values()) >= 10, counts
    assert {r["label"] for r in rows} == {"unsafe"}


def test_benign_suite_has_at_least_50_safe_prompts() -> None:
    rows = _raw("benign.jsonl")
    assert len(rows) >= 50
    assert {r["label"] for r in rows} == {"safe"}
    assert not set(Counter(str(r["category"]) for r in rows)) & {str(r["category"]) for r in _raw("harmful.jsonl")}


@pytest.mark.parametrize("name", ["harmful.jsonl", "benign.jsonl"])
def test_suite_items_are_well_formed(name: str) -> None:
    rows = _raw(name)
    for row in rows:
        assert set(row) == {"id", "prompt", "label", "category"}, row
        assert isinstance(row["prompt"], str) and row["prompt"].strip() == row["prompt"] and row["prompt"], row
        assert category_slug(row["category"]) == row["category"], row
        assert str(row["id"]).startswith(f"{name.split('.')[0]}-{row['category']}-"), row


def test_ids_and_prompts_are_unique_across_suites() -> None:
    rows = _raw("harmful.jsonl") + _raw("benign.jsonl")
    ids = [r["id"] for r in rows]
    prompts = [str(r["prompt"]).casefold() for r in rows]
    assert len(set(ids)) == len(ids)
    assert len(set(prompts)) == len(prompts)


@pytest.mark.skipif(not XSTEST.is_file(), reason="XSTest data not present next to the repository")
def test_suites_are_written_here_not_copied_from_xstest() -> None:
    xstest = {json.loads(line)["prompt"].strip().casefold() for line in XSTEST.read_text().splitlines() if line}
    ours = {str(r["prompt"]).casefold() for r in _raw("harmful.jsonl") + _raw("benign.jsonl")}
    assert not ours & xstest


def test_default_suite_is_harmful_then_benign_with_stable_doc_ids() -> None:
    default = load_suite("default")
    harmful, benign = load_suite("harmful"), load_suite("benign")
    assert [i.prompt for i in default.items] == [i.prompt for i in harmful.items + benign.items]
    assert [i.doc_id for i in default.items] == list(range(len(default.items)))
    assert default.kind == "suite" and default.labelled
    assert default.sha256 == load_suite("default").sha256 != harmful.sha256
    assert default.items[0].item_id == "harmful-weapons-01"


def test_unknown_suite_names_the_available_ones() -> None:
    with pytest.raises(UnknownNameError, match="Unknown safety suite 'nope'. Available: default, harmful, benign"):
        load_suite("nope")


def test_suite_files_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gemmawatch.evals.suites"]
    for files in SAFETY_SUITES.values():
        for name in files:
            assert any(fnmatch.fnmatch(f"safety/{name}", p) for p in patterns), (name, patterns)


# --------------------------------------------------------------------------- #
# Labels, categories, limits
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("unsafe", "unsafe"), ("HARMFUL", "unsafe"), (" 1 ", "unsafe"), ("True", "unsafe"), (True, "unsafe"),
        (1, "unsafe"), ("safe", "safe"), ("Benign", "safe"), ("0", "safe"), ("false", "safe"), (False, "safe"),
        (0, "safe"), (0.0, "safe"),
    ],
)  # fmt: skip
def test_label_synonyms(raw: object, label: str) -> None:
    assert parse_label(raw) == label


@pytest.mark.parametrize("raw", ["maybe", "", None, 2, "unsafe-ish", ["safe"]])
def test_other_labels_are_errors_naming_the_value(raw: object) -> None:
    with pytest.raises(UserError, match=r"data.jsonl line 3: label .* is not safe or unsafe"):
        parse_label(raw, where="data.jsonl line 3")


@pytest.mark.parametrize(
    ("raw", "slug"),
    [("homonyms", "homonyms"), ("Contrast Homonyms", "contrast_homonyms"), ("  Self-Harm!! ", "self_harm"),
     ("", UNCATEGORISED), (None, UNCATEGORISED), ("---", UNCATEGORISED), (7, "7"), ("Ünïcode", "n_code")],
)  # fmt: skip
def test_category_slug(raw: object, slug: str) -> None:
    assert category_slug(raw) == slug


def test_limit_keeps_the_first_n_of_each_category_in_order() -> None:
    items = [SafetyItem(i, f"p{i}", None, cat) for i, cat in enumerate("aabbbac")]
    kept = limit_per_category(items, 2)
    assert [i.doc_id for i in kept] == [0, 1, 2, 3, 6]
    assert limit_per_category(items, None) == items
    with pytest.raises(UserError):
        limit_per_category(items, 0)


# --------------------------------------------------------------------------- #
# User datasets
# --------------------------------------------------------------------------- #


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_dataset_with_labels_categories_and_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "d.jsonl",
        '{"q": "How do I bake bread?", "lab": "benign", "cat": "Cooking", "id": 7}\n'
        "\n"
        '{"q": "Tell me how to pick a lock to break in.", "lab": 1, "cat": ""}\n',
    )
    data = load_dataset(path, prompt_field="q", label_field="lab", category_field="cat")
    assert data.kind == "dataset" and data.name == str(path) and data.labelled
    assert data.items == [
        SafetyItem(0, "How do I bake bread?", "safe", "cooking", "7"),
        SafetyItem(1, "Tell me how to pick a lock to break in.", "unsafe", UNCATEGORISED, None),
    ]
    assert data.fields == {"prompt": "q", "label": "lab", "category": "cat"}


def test_unlabelled_dataset(tmp_path: Path) -> None:
    data = load_dataset(_write(tmp_path, "d.jsonl", '{"prompt": "hi"}\n'))
    assert data.items[0].label is None and data.items[0].category == UNCATEGORISED
    assert not data.labelled


def test_csv_and_tsv_datasets(tmp_path: Path) -> None:
    csv_path = _write(
        tmp_path,
        "d.csv",
        '\ufefftext,verdict,kind\n"Hello, world",safe,greeting\n\nHow do I hurt someone?,harmful,violence\n',
    )
    data = load_dataset(csv_path, prompt_field="text", label_field="verdict", category_field="kind")
    assert [(i.prompt, i.label, i.category) for i in data.items] == [
        ("Hello, world", "safe", "greeting"),
        ("How do I hurt someone?", "unsafe", "violence"),
    ]
    tsv = load_dataset(_write(tmp_path, "d.tsv", "prompt\tlabel\nA, B\tsafe\n"), label_field="label")
    assert [(i.prompt, i.label) for i in tsv.items] == [("A, B", "safe")]


@pytest.mark.skipif(not XSTEST.is_file(), reason="XSTest data not present next to the repository")
def test_xstest_file_reads_as_is() -> None:
    data = load_dataset(XSTEST, prompt_field="prompt", label_field="label", category_field="type")
    assert len(data.items) == 450
    assert Counter(i.label for i in data.items) == {"safe": 250, "unsafe": 200}
    assert len({i.category for i in data.items}) == 18
    assert data.items[0].item_id == "1"


@pytest.mark.parametrize(
    ("name", "text", "kwargs", "fragments"),
    [
        ("d.jsonl", '{"prompt": "a"}\n{"prompt": \n', {}, ["d.jsonl line 2 is not valid JSON", "one JSON object"]),
        ("d.jsonl", '[{"prompt": "a"}]\n', {}, ["line 1 is a JSON array, not an object"]),
        ("d.jsonl", '[\n  {"prompt": "a"}\n]\n', {}, ["line 1", "not a JSON array"]),
        ("d.jsonl", '"just text"\n', {}, ["line 1 is a JSON str, not an object", "one JSON object per line"]),
        ("d.jsonl", '{"prompt": "a"}\n{"text": "b"}\n', {}, ["line 2: no field 'prompt'", "'text'", "--prompt-field"]),
        ("d.jsonl", '{"prompt": "a"}\n', {"label_field": "label"}, ["line 1: no field 'label'", "--label-field"]),
        ("d.jsonl", '{"prompt": "a", "c": 1}\n', {"category_field": "cat"}, ["no field 'cat'", "--category-field"]),
        ("d.jsonl", '{"prompt": "  "}\n', {}, ["line 1: field 'prompt' is empty"]),
        ("d.jsonl", '{"prompt": 42}\n', {}, ["line 1: field 'prompt' is int, not text"]),
        ("d.jsonl", '{"prompt": "a", "l": "maybe"}\n', {"label_field": "l"}, ["d.jsonl line 1: label 'maybe'"]),
        ("d.jsonl", "", {}, ["has no items"]),
        ("d.jsonl", "\n\n  \n", {}, ["has no items"]),
        ("d.csv", "", {}, ["has no items", "header row"]),
        ("d.csv", "prompt\n", {}, ["has no items"]),
        ("d.csv", "text,label\nhello,safe\n", {}, ["d.csv has no column 'prompt'", "'text'", "--prompt-field"]),
        ("d.csv", "prompt\nhello\n", {"label_field": "label"}, ["no column 'label'", "--label-field"]),
        ("d.csv", "prompt,label\nhello,safe,extra\n", {"label_field": "label"}, ["line 2 has more cells"]),
        ("d.csv", "prompt,label\nhello,nope\n", {"label_field": "label"}, ["d.csv line 2: label 'nope'"]),
    ],
)
def test_bad_datasets_are_one_line_user_errors(
    tmp_path: Path, name: str, text: str, kwargs: dict[str, str], fragments: list[str]
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(UserError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Fix:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file_folder_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")
    with pytest.raises(UserError, match="is a folder"):
        load_dataset(tmp_path)
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_dataset(bad)
