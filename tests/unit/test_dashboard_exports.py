"""Table exports (dashboard/exports.py): CSV, JSON and Parquet read back equal; untrusted text stays inert."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from gemmawatch.dashboard import exports
from gemmawatch.errors import UserError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": ["smoke_gen", "safety/weapons", "x"],
            "value": [0.25, 1.0, float("nan")],
            "n": pd.array([10, None, 3], dtype="Int64"),
            "output": ["Paris", "<script>alert(1)</script>", 'ünïcode, "quoted"\nnewline'],
        }
    )


def test_csv_round_trip() -> None:
    frame = _frame()
    back = pd.read_csv(io.BytesIO(exports.to_bytes(frame, "csv")), dtype={"n": "Int64"})
    pd.testing.assert_frame_equal(back, frame)


def test_json_round_trip() -> None:
    frame = _frame()
    rows = json.loads(exports.to_bytes(frame, "json"))
    assert rows[1] == {"task": "safety/weapons", "value": 1.0, "n": None, "output": "<script>alert(1)</script>"}
    back = pd.DataFrame(rows).astype({"n": "Int64", "value": float})
    pd.testing.assert_frame_equal(back, frame)


def test_parquet_round_trip_keeps_types_and_time_zones() -> None:
    frame = _frame().assign(started=pd.to_datetime(["2025-01-01T10:00Z"] * 3, utc=True))
    back = pd.read_parquet(io.BytesIO(exports.to_bytes(frame, "parquet")))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert str(back["n"].dtype) == "Int64" and str(back["started"].dt.tz) == "UTC"


def test_dict_cells_become_json_text_in_every_format() -> None:
    frame = pd.DataFrame({"scores": [{"acc": 1.0}, {"acc": 0.0, "note": "x"}], "id": [1, 2]})
    assert pd.read_csv(io.BytesIO(exports.to_bytes(frame, "csv")))["scores"][0] == '{"acc": 1.0}'
    assert json.loads(exports.to_bytes(frame, "json"))[1]["scores"] == '{"acc": 0.0, "note": "x"}'
    assert pd.read_parquet(io.BytesIO(exports.to_bytes(frame, "parquet")))["scores"][0] == '{"acc": 1.0}'


def test_csv_defuses_spreadsheet_formulas_only() -> None:
    frame = pd.DataFrame({"output": ['=HYPERLINK("http://x")', "+cmd", "@SUM(A1)", "-1.5", "-", "plain"]})
    back = pd.read_csv(io.BytesIO(exports.to_bytes(frame, "csv")), dtype=str, keep_default_na=False)
    assert back["output"].tolist() == ['\'=HYPERLINK("http://x")', "'+cmd", "'@SUM(A1)", "-1.5", "-", "plain"]
    # JSON keeps the text exactly.
    assert json.loads(exports.to_bytes(frame, "json"))[0]["output"] == '=HYPERLINK("http://x")'


def test_unknown_format_and_file_names() -> None:
    with pytest.raises(UserError, match="csv, json, parquet"):
        exports.to_bytes(_frame(), "xlsx")
    assert exports.file_name("run 12/samples", "csv") == "run_12_samples.csv"
    assert exports.parquet_available()
