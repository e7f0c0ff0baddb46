"""The ``jsonl`` and ``csv`` dataset formats: any user file, read by field names.

``gemmawatch eval --dataset data.jsonl --prompt-field question --reference-field answer``.
Options (keyword arguments of :func:`load_jsonl` / :func:`load_csv`):

* ``prompt_field`` (required) - the prompt text (non-empty text);
* ``reference_field`` - the accepted answer: text, a number or boolean (kept as its
  JSON text: ``18``, ``1.5``, ``true``) or, in JSONL, a list of those (any of them
  counts). JSON ``null``, an empty list and an empty CSV cell mean "no reference"
  for that item (reference-based scorers leave it unscored);
* ``category_field`` - the breakdown key, slugged (``Word Problems`` -> ``word_problems``;
  empty -> ``uncategorised``);
* ``id_field`` - the item's own id, kept in the sample's ``meta`` for drill-down;
* ``name`` - the stored task name (default: the file name without its suffix).

``csv`` reads comma-separated files, or tab-separated ones named ``*.tsv``. Each item's
``doc_id`` is its position among the file's items (blank lines are not items), so the
same file always gives the same ids. Default scorers: ``exact_match`` and
``token_f1`` with a reference field, ``length`` and ``repetition`` without.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.datasets.base import DatasetItem, LoadedDataset
from gemmawatch.evals.datasets.records import Layout, category_slug, field_of, layout_of, read_records, text_field

__all__ = ["load_csv", "load_jsonl", "reference_of"]

#: Scorers used when the user names none.
REFERENCE_SCORERS: list[tuple[str, dict[str, Any]]] = [("exact_match", {}), ("token_f1", {})]
REFERENCE_FREE_SCORERS: list[tuple[str, dict[str, Any]]] = [("length", {}), ("repetition", {})]


def load_jsonl(
    path: Path,
    *,
    prompt_field: str | None = None,
    reference_field: str | None = None,
    category_field: str | None = None,
    id_field: str | None = None,
    name: str | None = None,
) -> LoadedDataset:
    """A JSONL file (one object per line) as a dataset; see the module docstring.

    Raises:
        ConfigError: No ``prompt_field``; a missing file, bad JSON, a missing field, an
            empty prompt, an unusable reference, or no items (the message names file and line).
    """
    return _load(path, "jsonl", prompt_field, reference_field, category_field, id_field, name)


def load_csv(
    path: Path,
    *,
    prompt_field: str | None = None,
    reference_field: str | None = None,
    category_field: str | None = None,
    id_field: str | None = None,
    name: str | None = None,
) -> LoadedDataset:
    """A CSV file (header row first; ``*.tsv`` tab-separated) as a dataset; see the module docstring.

    Raises:
        ConfigError: As :func:`load_jsonl`, plus a column missing from the header or a
            row with more cells than the header.
    """
    layout: Layout = "tsv" if layout_of(Path(path)) == "tsv" else "csv"
    return _load(path, layout, prompt_field, reference_field, category_field, id_field, name)


def reference_of(value: Any, where: str, field: str) -> str | list[str] | None:
    """A raw reference value as text, a list of texts, or None (see the module docstring).

    Raises:
        ConfigError: An object, or a list holding anything but text, numbers and booleans.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        refs = [reference_of(v, where, field) for v in value]
        if any(not isinstance(r, str) for r in refs):
            raise ConfigError(
                f"{where}: field '{field}' is a list holding lists, objects or nulls. "
                "Fix: give the reference as text or a flat list of accepted answers"
            )
        return [r for r in refs if isinstance(r, str)] or None
    raise ConfigError(
        f"{where}: field '{field}' is a JSON {type(value).__name__}, not an answer. "
        "Fix: give the reference as text, a number or a list of accepted answers"
    )


def _load(
    path: Path,
    layout: Layout,
    prompt_field: str | None,
    reference_field: str | None,
    category_field: str | None,
    id_field: str | None,
    name: str | None,
) -> LoadedDataset:
    fmt = "jsonl" if layout == "jsonl" else "csv"
    if not prompt_field:
        raise ConfigError(
            f"--format {fmt} needs --prompt-field. "
            "Fix: name the field that holds the prompt text, e.g. --prompt-field question"
        )
    name = Path(path).stem if name is None else name
    if not name.strip() or "/" in name:
        raise ConfigError(f"Dataset name {name!r} is empty or contains '/'. Fix: pass a name like my_qa")
    columns = {
        "--prompt-field": prompt_field,
        "--reference-field": reference_field,
        "--category-field": category_field,
        "--id-field": id_field,
    }
    records = read_records(path, layout=layout, columns=columns)
    items: list[DatasetItem] = []
    for line, row in records.rows:
        where = f"{records.shown} line {line}"
        prompt = text_field(row, prompt_field, where, "--prompt-field")
        reference = None
        if reference_field is not None:
            raw = field_of(row, reference_field, where, "--reference-field")
            reference = None if layout != "jsonl" and raw == "" else reference_of(raw, where, reference_field)
        category = None
        if category_field is not None:
            category = category_slug(field_of(row, category_field, where, "--category-field"))
        meta: dict[str, Any] = {}
        if id_field is not None:
            meta["id"] = field_of(row, id_field, where, "--id-field")
        items.append(DatasetItem(len(items), prompt, reference=reference, category=category, meta=meta))
    if not items:
        raise ConfigError(
            f"Dataset '{records.shown}' has no items. Fix: add at least one line with a '{prompt_field}' field"
        )
    return LoadedDataset(
        name=name,
        items=items,
        sources={records.shown: records.sha256},
        scorers=[*(REFERENCE_SCORERS if reference_field is not None else REFERENCE_FREE_SCORERS)],
    )
