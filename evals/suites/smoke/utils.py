"""lm-eval hooks for the bundled ``smoke`` suite.

lm-eval imports this file by path (``!function utils.<name>`` in the task YAMLs
resolves next to the YAML), so it must stay self-contained: no package-relative
imports. The data files are located from ``__file__``, never from the current
working directory, which is why the tasks use ``custom_dataset`` instead of
``dataset_path: json`` + ``data_files`` (those resolve against the CWD).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import datasets  # type: ignore[import-untyped]  # no stubs; pyproject has no override for it

HERE = Path(__file__).resolve().parent
MC_FILE = HERE / "mc.jsonl"
GEN_FILE = HERE / "gen.jsonl"
SPLIT = "test"

_MC_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "subject": datasets.Value("string"),
        "question": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "answer": datasets.Value("int64"),
    }
)
_GEN_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "aliases": datasets.Sequence(datasets.Value("string")),
    }
)
# Punctuation is dropped, not replaced, so "U.S." == "US"; hyphens become spaces first.
_PUNCT_TABLE = str.maketrans("", "", string.punctuation + "\u2018\u2019\u201c\u201d")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read one JSON object per non-blank line."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _mc_dataset(subject: str) -> datasets.DatasetDict:
    rows = [row for row in read_jsonl(MC_FILE) if row["subject"] == subject]
    if not rows:
        raise ValueError(f"smoke suite: no multiple-choice items for subject {subject!r} in {MC_FILE}")
    return datasets.DatasetDict({SPLIT: datasets.Dataset.from_list(rows, features=_MC_FEATURES)})


# custom_dataset hooks: lm-eval calls them with the task metadata and dataset_kwargs
# (version, model args, ...) as keyword arguments, which these datasets do not need.
def load_mc_arithmetic(**_: Any) -> datasets.DatasetDict:
    """Arithmetic multiple-choice items."""
    return _mc_dataset("arithmetic")


def load_mc_science(**_: Any) -> datasets.DatasetDict:
    """Science multiple-choice items."""
    return _mc_dataset("science")


def load_mc_geography(**_: Any) -> datasets.DatasetDict:
    """Geography multiple-choice items."""
    return _mc_dataset("geography")


def load_mc_vocabulary(**_: Any) -> datasets.DatasetDict:
    """Vocabulary multiple-choice items."""
    return _mc_dataset("vocabulary")


def load_mc_common_sense(**_: Any) -> datasets.DatasetDict:
    """Everyday common-sense multiple-choice items."""
    return _mc_dataset("common_sense")


def load_gen(**_: Any) -> datasets.DatasetDict:
    """Short-answer generation items."""
    rows = read_jsonl(GEN_FILE)
    return datasets.DatasetDict({SPLIT: datasets.Dataset.from_list(rows, features=_GEN_FEATURES)})


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and collapse whitespace (exact_match's ignore_case/ignore_punctuation)."""
    return " ".join(text.replace("-", " ").lower().translate(_PUNCT_TABLE).split())


def accepted_answers(doc: dict[str, Any]) -> set[str]:
    """The normalized canonical answer plus its aliases."""
    return {normalize(a) for a in [doc["answer"], *(doc.get("aliases") or [])]} - {""}


def is_match(prediction: str, doc: dict[str, Any]) -> bool:
    """True when the normalized prediction equals the answer or one of its aliases."""
    return normalize(prediction) in accepted_answers(doc)


def process_gen_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """lm-eval ``process_results`` hook for ``smoke_gen``: alias-aware exact match."""
    prediction = results[0] if results else ""
    if isinstance(prediction, list | tuple):  # unfiltered responses arrive one level deeper
        prediction = prediction[0] if prediction else ""
    return {"exact_match": 1.0 if is_match(str(prediction), doc) else 0.0}
