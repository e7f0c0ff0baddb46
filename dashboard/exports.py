"""Table exports: a display frame as CSV, JSON or Parquet bytes (pure pandas, no Streamlit).

Every table a page shows can be downloaded in these formats (``ui.export_buttons``).
Cells that hold dicts or lists (a sample's ``scores``) are written as compact JSON
text, so all three formats carry the same content and Parquet gets one type per
column. Model outputs are untrusted: a CSV cell that a spreadsheet would run as a
formula (``=HYPERLINK(...)``, ``+cmd``, ``@SUM``) is prefixed with ``'`` (OWASP's
advice against CSV injection); JSON and Parquet keep the text as it is.

Parquet goes through pyarrow (installed with pandas' ``parquet`` extra); without it
:func:`to_bytes` raises :class:`~gemmawatch.errors.MissingDependencyError`.
"""

from __future__ import annotations

import importlib.util
import io
import json
from typing import Any, Literal

import pandas as pd

from gemmawatch.errors import MissingDependencyError, UserError

__all__ = ["FORMATS", "MIME_TYPES", "Format", "export_frame", "file_name", "parquet_available", "to_bytes"]

Format = Literal["csv", "json", "parquet"]
#: Export formats in the order the download buttons show them.
FORMATS: tuple[Format, ...] = ("csv", "json", "parquet")
MIME_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: First characters that make a spreadsheet evaluate a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parquet_available() -> bool:
    """Whether pyarrow can be imported (Parquet exports need it)."""
    return importlib.util.find_spec("pyarrow") is not None


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` that every format can hold: flat index, text column names,
    dict/list cells as JSON text."""
    out = frame.reset_index(drop=True).copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if _texty(out[column]):
            out[column] = out[column].map(_cell)
    return out


def _texty(series: pd.Series) -> bool:
    # pandas 3 stores text as its own "str" dtype, older versions as object.
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 1 and value.startswith(_FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The frame as a file in ``fmt`` (``csv``, ``json`` or ``parquet``).

    * CSV: UTF-8, header row, no index; formula-like text cells prefixed with ``'``.
    * JSON: an array of row objects; times as ISO 8601 (UTC), missing values as null.
    * Parquet: pyarrow, no index; nullable integers and time zones kept.

    Raises:
        UserError: An unknown format.
        MissingDependencyError: Parquet without pyarrow.
    """
    out = export_frame(frame)
    if fmt == "csv":
        for column in out.columns:
            if _texty(out[column]):
                out[column] = out[column].map(_defuse)
        return out.to_csv(index=False).encode("utf-8")
    if fmt == "json":
        return out.to_json(orient="records", date_format="iso", date_unit="s", force_ascii=False).encode("utf-8")
    if fmt == "parquet":
        if not parquet_available():
            raise MissingDependencyError("Parquet export needs pyarrow. Fix: pip install pyarrow (or export CSV/JSON)")
        buffer = io.BytesIO()
        out.to_parquet(buffer, index=False, engine="pyarrow")
        return buffer.getvalue()
    raise UserError(f"Unknown export format {fmt!r}. Fix: use one of {', '.join(FORMATS)}")


def file_name(name: str, fmt: str) -> str:
    """``<name>.<fmt>`` with anything but letters, digits, ``-`` and ``_`` replaced by ``_``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "table"
    return f"{safe}.{fmt}"
