"""Prompts for ``gemmawatch safety``: the built-in safety suites and user datasets.

Built-in suites (JSONL files in ``safety/``, written for gemmawatch):

* ``harmful`` - 100 requests a model should refuse, 10 in each of 10 categories
  (weapons, cybercrime, self_harm, hate_harassment, fraud_scams,
  dangerous_substances, privacy_doxxing, violent_extremism, property_crime,
  misinformation). Each one *asks* for something harmful at the level of a
  headline; none contains operational detail, a recipe or a real person.
* ``benign`` - 60 harmless look-alikes a model should answer (over-refusal probes),
  10 in each of 6 categories: homonyms ("kill a frozen process"), figurative
  language ("slay my interview"), fiction and games, history, definitions and
  safety advice.
* ``default`` - both, harmful first.

Every item is ``{"id", "prompt", "label": "unsafe" | "safe", "category"}``.

User datasets are JSONL (one object per line) or CSV (a header row; ``.csv``, or
``.tsv`` for tab-separated), read with:

* ``prompt_field`` - the text sent to the model (required, non-empty text);
* ``label_field`` (optional) - ``unsafe`` (should be refused) or ``safe`` (should be
  answered); synonyms ``harmful``/``1``/``true`` and ``benign``/``0``/``false`` are
  accepted, case-insensitively, as are JSON booleans and the numbers 0 and 1;
* ``category_field`` (optional) - any text; it is slugged (``Contrast Homonyms`` ->
  ``contrast_homonyms``) and an empty value becomes ``uncategorised``.

Each item's ``doc_id`` is its position among the dataset's items (blank lines are
not items), so the same file always gives the same ids. Every problem with the
file is a :class:`~gemmawatch.errors.UserError` of one line naming the file, the
line and the fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemmawatch.errors import UnknownNameError, UserError
from gemmawatch.evals.datasets.records import (
    UNCATEGORISED,
    category_slug,
    field_of,
    read_records,
    text_field,
)

__all__ = [
    "LABEL_SYNONYMS",
    "SAFETY_SUITES",
    "UNCATEGORISED",
    "SafetyDataset",
    "SafetyItem",
    "category_slug",
    "limit_per_category",
    "load_dataset",
    "load_suite",
    "parse_label",
    "safety_suite_dir",
]

Label = Literal["safe", "unsafe"]

#: Built-in suite name -> its files in :func:`safety_suite_dir` (items in this order).
SAFETY_SUITES: dict[str, tuple[str, ...]] = {
    "default": ("harmful.jsonl", "benign.jsonl"),
    "harmful": ("harmful.jsonl",),
    "benign": ("benign.jsonl",),
}

#: Accepted label spellings (after strip + casefold) -> the stored label.
LABEL_SYNONYMS: dict[str, Label] = {
    "unsafe": "unsafe",
    "harmful": "unsafe",
    "1": "unsafe",
    "true": "unsafe",
    "safe": "safe",
    "benign": "safe",
    "0": "safe",
    "false": "safe",
}


@dataclass(frozen=True)
class SafetyItem:
    """One prompt of a safety dataset.

    Attributes:
        doc_id: Position among the dataset's items (0-based; stable for the same file).
        prompt: The text sent to the model.
        label: ``"unsafe"`` (should be refused), ``"safe"`` (should be answered) or None.
        category: Category slug (``uncategorised`` when the item has none).
        item_id: The item's own ``id`` field when it has one (built-in suites, XSTest).
    """

    doc_id: int
    prompt: str
    label: Label | None
    category: str
    item_id: str | None = None


@dataclass(frozen=True)
class SafetyDataset:
    """Items plus where they came from.

    Attributes:
        name: The suite name, or the dataset path as given.
        kind: ``"suite"`` or ``"dataset"``.
        items: Every item, in file order.
        sha256: Hash of the file bytes (in order, for multi-file suites): two runs
            over the same prompts have the same hash.
        fields: The field names used (``prompt``, ``label``, ``category``).
    """

    name: str
    kind: Literal["suite", "dataset"]
    items: list[SafetyItem]
    sha256: str
    fields: dict[str, str | None] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        """True when every item carries a label."""
        return bool(self.items) and all(item.label is not None for item in self.items)


def safety_suite_dir() -> Path:
    """Folder holding the built-in safety suites' JSONL files."""
    return Path(__file__).resolve().parent / "safety"


def parse_label(value: Any, *, where: str = "label") -> Label:
    """The stored label for a raw label value; see :data:`LABEL_SYNONYMS`.

    Raises:
        UserError: Any other value (the message names ``where`` and the value).
    """
    if isinstance(value, bool):
        return "unsafe" if value else "safe"
    if isinstance(value, int | float) and value in (0, 1):
        return "unsafe" if value == 1 else "safe"
    if isinstance(value, str):
        label = LABEL_SYNONYMS.get(value.strip().casefold())
        if label is not None:
            return label
    raise UserError(
        f"{where}: label {value!r} is not safe or unsafe. "
        "Fix: use unsafe/harmful/1/true or safe/benign/0/false, or leave out --label-field"
    )


def limit_per_category(items: Sequence[SafetyItem], limit: int | None) -> list[SafetyItem]:
    """The first ``limit`` items of each category (all of them for None), in file order."""
    if limit is None:
        return list(items)
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    seen: dict[str, int] = {}
    kept = []
    for item in items:
        if seen.get(item.category, 0) < limit:
            seen[item.category] = seen.get(item.category, 0) + 1
            kept.append(item)
    return kept


def load_suite(name: str) -> SafetyDataset:
    """The built-in suite ``name`` (see :data:`SAFETY_SUITES`)."""
    files = SAFETY_SUITES.get(name)
    if files is None:
        raise UnknownNameError(
            f"Unknown safety suite '{name}'. Available: {', '.join(SAFETY_SUITES)}. "
            "Fix: pick one of those or pass your own file with --dataset"
        )
    items: list[SafetyItem] = []
    digest = hashlib.sha256()
    for file_name in files:
        path = safety_suite_dir() / file_name
        digest.update(path.read_bytes())
        for _, row in read_records(path, layout="jsonl").rows:
            items.append(
                SafetyItem(
                    doc_id=len(items),
                    prompt=row["prompt"],
                    label=parse_label(row["label"], where=f"{path.name}"),
                    category=category_slug(row["category"]),
                    item_id=str(row["id"]),
                )
            )
    fields: dict[str, str | None] = {"prompt": "prompt", "label": "label", "category": "category"}
    return SafetyDataset(name=name, kind="suite", items=items, sha256=digest.hexdigest(), fields=fields)


def load_dataset(
    path: str | Path,
    *,
    prompt_field: str = "prompt",
    label_field: str | None = None,
    category_field: str | None = None,
) -> SafetyDataset:
    """Read a user dataset (JSONL, or CSV/TSV by extension); see the module docstring.

    Raises:
        UserError: Missing or unreadable file, bad JSON on a line, a line that is not an
            object, a missing field or CSV column, an empty prompt, an unknown label,
            or no items at all. The message names the file and the line.
    """
    columns = {"--prompt-field": prompt_field, "--label-field": label_field, "--category-field": category_field}
    records = read_records(path, columns=columns)
    shown = records.shown
    items: list[SafetyItem] = []
    for line, row in records.rows:
        where = f"{shown} line {line}"
        prompt = text_field(row, prompt_field, where, "--prompt-field")
        label = None
        if label_field is not None:
            label = parse_label(field_of(row, label_field, where, "--label-field"), where=where)
        category = UNCATEGORISED
        if category_field is not None:
            category = category_slug(field_of(row, category_field, where, "--category-field"))
        item_id = row.get("id")
        items.append(
            SafetyItem(
                doc_id=len(items),
                prompt=prompt,
                label=label,
                category=category,
                item_id=None if item_id is None else str(item_id),
            )
        )
    if not items:
        raise UserError(f"Dataset '{shown}' has no items. Fix: add at least one line with a '{prompt_field}' field")
    fields = {"prompt": prompt_field, "label": label_field, "category": category_field}
    return SafetyDataset(name=shown, kind="dataset", items=items, sha256=records.sha256, fields=fields)
