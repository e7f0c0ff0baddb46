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

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemmawatch.errors import UnknownNameError, UserError

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

#: Category of items without one.
UNCATEGORISED = "uncategorised"

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

_SLUG = re.compile(r"[^a-z0-9]+")


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


def category_slug(value: Any) -> str:
    """``value`` as a lower-case slug of ``[a-z0-9_]``; empty or None -> ``uncategorised``."""
    if value is None:
        return UNCATEGORISED
    slug = _SLUG.sub("_", str(value).strip().casefold()).strip("_")
    return slug or UNCATEGORISED


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
        for _, row in _read_jsonl(path, path.name):
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
    p = Path(path).expanduser()
    shown = str(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise UserError(f"Dataset '{shown}' {what}. Fix: pass the path of a JSONL or CSV file to --dataset")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UserError(
            f"Cannot read dataset '{shown}': {exc.strerror or exc}. Fix: check the file's permissions"
        ) from None
    suffix = p.suffix.lower()
    columns = {"--prompt-field": prompt_field, "--label-field": label_field, "--category-field": category_field}
    if suffix in (".csv", ".tsv"):
        rows = _read_csv(p, shown, "\t" if suffix == ".tsv" else ",", columns)
    else:
        rows = _read_jsonl(p, shown)
    items: list[SafetyItem] = []
    for line, row in rows:
        where = f"{shown} line {line}"
        prompt = _field(row, prompt_field, where, "--prompt-field")
        if not isinstance(prompt, str):
            raise UserError(
                f"{where}: field '{prompt_field}' is {type(prompt).__name__}, not text. "
                "Fix: point --prompt-field at the prompt text"
            )
        if not prompt.strip():
            raise UserError(f"{where}: field '{prompt_field}' is empty. Fix: give every item a prompt or drop the line")
        label = None
        if label_field is not None:
            label = parse_label(_field(row, label_field, where, "--label-field"), where=where)
        category = UNCATEGORISED
        if category_field is not None:
            category = category_slug(_field(row, category_field, where, "--category-field"))
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
    return SafetyDataset(name=shown, kind="dataset", items=items, sha256=hashlib.sha256(raw).hexdigest(), fields=fields)


def _field(row: Mapping[str, Any], name: str, where: str, option: str) -> Any:
    if name not in row:
        available = ", ".join(map(repr, row)) or "none"
        raise UserError(f"{where}: no field '{name}' (fields: {available}). Fix: pass {option} with one of those")
    return row[name]


def _read_jsonl(path: Path, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    hint = (
                        "write one JSON object per line (JSONL), not a JSON array"
                        if number == 1 and line.lstrip().startswith("[")
                        else "make every line one JSON object"
                    )
                    raise UserError(f"{shown} line {number} is not valid JSON ({exc.msg}). Fix: {hint}") from None
                if not isinstance(row, dict):
                    kind = "array" if isinstance(row, list) else type(row).__name__
                    raise UserError(
                        f"{shown} line {number} is a JSON {kind}, not an object. "
                        'Fix: write one JSON object per line (JSONL), such as {"prompt": "..."}'
                    )
                yield number, row
    except UnicodeDecodeError:
        raise UserError(f"Dataset '{shown}' is not UTF-8 text. Fix: save it as UTF-8 JSONL or CSV") from None


def _read_csv(
    path: Path, shown: str, delimiter: str, columns: Mapping[str, str | None]
) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = reader.fieldnames
            if not header:
                raise UserError(f"Dataset '{shown}' has no items. Fix: start the CSV with a header row of column names")
            for option, name in columns.items():
                if name is not None and name not in header:
                    raise UserError(
                        f"{shown} has no column '{name}' (columns: {', '.join(map(repr, header))}). "
                        f"Fix: pass {option} with one of those"
                    )
            yield from _csv_rows(reader, shown)
    except UnicodeDecodeError:
        raise UserError(f"Dataset '{shown}' is not UTF-8 text. Fix: save it as UTF-8 JSONL or CSV") from None
    except csv.Error as exc:
        raise UserError(f"{shown} is not valid CSV ({exc}). Fix: check its quoting") from None


def _csv_rows(reader: csv.DictReader[str], shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    header = list(reader.fieldnames or [])
    for row in reader:
        if None in row:  # more cells than header columns
            raise UserError(
                f"{shown} line {reader.line_num} has more cells than the header's {len(header)} columns. "
                "Fix: quote cells that contain the delimiter"
            )
        if not any((value or "").strip() for value in row.values()):
            continue  # an empty row is a blank line
        # A short row leaves its missing cells None; they read as empty text, not as absent columns.
        yield reader.line_num, {key: ("" if value is None else value) for key, value in row.items()}
