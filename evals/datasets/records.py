"""Reading user data files (JSONL, CSV, TSV) into rows, with one-line errors that name the file and line.

Shared by ``gemmawatch safety --dataset`` (:mod:`gemmawatch.evals.suites.safety_data`)
and the generic ``jsonl``/``csv`` formats of ``gemmawatch eval --dataset``
(:mod:`gemmawatch.evals.datasets.generic`).

* JSONL: one JSON object per line; blank lines are skipped; a UTF-8 BOM is accepted.
* CSV: a header row of column names, then one row per item; ``.tsv`` files are
  tab-separated. Empty rows are skipped; a short row's missing cells read as empty
  text; a row with more cells than the header is an error (an unquoted delimiter).

Every problem is a :class:`~gemmawatch.errors.ConfigError` (a ``UserError``) of one
line naming the file, the line when there is one, and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gemmawatch.errors import ConfigError

__all__ = [
    "UNCATEGORISED",
    "Records",
    "category_slug",
    "field_of",
    "layout_of",
    "read_records",
    "text_field",
]

#: Category of items whose category value is empty.
UNCATEGORISED = "uncategorised"

#: ``jsonl``, ``csv`` (comma-separated) or ``tsv`` (tab-separated).
Layout = Literal["jsonl", "csv", "tsv"]

_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Records:
    """The rows of one data file.

    Attributes:
        shown: The path as the user gave it (what error messages name).
        sha256: Hash of the file's bytes.
        rows: ``(line number, row)`` in file order; blank lines are not rows.
    """

    shown: str
    sha256: str
    rows: list[tuple[int, dict[str, Any]]]


def category_slug(value: Any) -> str:
    """``value`` as a lower-case slug of ``[a-z0-9_]``; empty or None -> ``uncategorised``."""
    if value is None:
        return UNCATEGORISED
    slug = _SLUG.sub("_", str(value).strip().casefold()).strip("_")
    return slug or UNCATEGORISED


def layout_of(path: Path) -> Layout:
    """``csv``/``tsv`` by the file's suffix, ``jsonl`` for anything else."""
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "tsv"
    return "csv" if suffix == ".csv" else "jsonl"


def read_records(
    path: str | Path,
    *,
    layout: Layout | None = None,
    columns: Mapping[str, str | None] | None = None,
) -> Records:
    """Every row of the data file ``path`` (``layout`` None: by its suffix, see :func:`layout_of`).

    ``columns`` maps a CLI option to the column it names (``{"--prompt-field": "q"}``);
    for CSV/TSV a named column missing from the header is an error naming the option.
    JSON rows are checked field by field later (:func:`field_of`), since lines may differ.

    Raises:
        ConfigError: Missing or unreadable file, a folder, not UTF-8, bad JSON on a line,
            a line that is not an object, a missing CSV column, malformed CSV.
    """
    p = Path(path).expanduser()
    shown = str(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise ConfigError(f"Dataset '{shown}' {what}. Fix: pass the path of a JSONL or CSV file to --dataset")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read dataset '{shown}': {exc.strerror or exc}. Fix: check the file's permissions"
        ) from None
    layout = layout or layout_of(p)
    if layout == "jsonl":
        rows = list(_read_jsonl(p, shown))
    else:
        rows = list(_read_csv(p, shown, "\t" if layout == "tsv" else ",", columns or {}))
    return Records(shown=shown, sha256=hashlib.sha256(raw).hexdigest(), rows=rows)


def field_of(row: Mapping[str, Any], name: str, where: str, option: str) -> Any:
    """``row[name]``; a missing field is a ConfigError naming ``where``, the fields there are and ``option``."""
    if name not in row:
        available = ", ".join(map(repr, row)) or "none"
        raise ConfigError(f"{where}: no field '{name}' (fields: {available}). Fix: pass {option} with one of those")
    return row[name]


def text_field(row: Mapping[str, Any], name: str, where: str, option: str) -> str:
    """``row[name]`` as non-empty text (a prompt): missing, non-text or blank values are ConfigErrors."""
    value = field_of(row, name, where, option)
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: field '{name}' is {type(value).__name__}, not text. Fix: point {option} at the prompt text"
        )
    if not value.strip():
        raise ConfigError(f"{where}: field '{name}' is empty. Fix: give every item a prompt or drop the line")
    return value


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
                    raise ConfigError(f"{shown} line {number} is not valid JSON ({exc.msg}). Fix: {hint}") from None
                if not isinstance(row, dict):
                    kind = "array" if isinstance(row, list) else type(row).__name__
                    raise ConfigError(
                        f"{shown} line {number} is a JSON {kind}, not an object. "
                        'Fix: write one JSON object per line (JSONL), such as {"prompt": "..."}'
                    )
                yield number, row
    except UnicodeDecodeError:
        raise ConfigError(f"Dataset '{shown}' is not UTF-8 text. Fix: save it as UTF-8 JSONL or CSV") from None


def _read_csv(
    path: Path, shown: str, delimiter: str, columns: Mapping[str, str | None]
) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = reader.fieldnames
            if not header:
                raise ConfigError(
                    f"Dataset '{shown}' has no items. Fix: start the CSV with a header row of column names"
                )
            for option, name in columns.items():
                if name is not None and name not in header:
                    raise ConfigError(
                        f"{shown} has no column '{name}' (columns: {', '.join(map(repr, header))}). "
                        f"Fix: pass {option} with one of those"
                    )
            yield from _csv_rows(reader, shown)
    except UnicodeDecodeError:
        raise ConfigError(f"Dataset '{shown}' is not UTF-8 text. Fix: save it as UTF-8 JSONL or CSV") from None
    except csv.Error as exc:
        raise ConfigError(f"{shown} is not valid CSV ({exc}). Fix: check its quoting") from None


def _csv_rows(reader: csv.DictReader[str], shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    header = list(reader.fieldnames or [])
    for row in reader:
        if None in row:  # more cells than header columns
            raise ConfigError(
                f"{shown} line {reader.line_num} has more cells than the header's {len(header)} columns. "
                "Fix: quote cells that contain the delimiter"
            )
        if not any((value or "").strip() for value in row.values()):
            continue  # an empty row is a blank line
        # A short row leaves its missing cells None; they read as empty text, not as absent columns.
        yield reader.line_num, {key: ("" if value is None else value) for key, value in row.items()}
