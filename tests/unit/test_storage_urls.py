"""URL resolution, masking and value conversion: no database needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

from gemmawatch.storage.engine import ENV_VAR, default_url, json_dumps, mask_url, resolve_url
from gemmawatch.storage.models import MetricResult, TelemetrySample, UTCDateTime
from gemmawatch.storage.queries._rows import prepare_rows


def test_explicit_url_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "sqlite:////tmp/from-env.db")
    assert resolve_url("sqlite:////tmp/explicit.db") == "sqlite:////tmp/explicit.db"
    assert resolve_url(None) == "sqlite:////tmp/from-env.db"
    assert resolve_url("  ") == "sqlite:////tmp/from-env.db"


def test_default_is_sqlite_in_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    url = resolve_url(None)
    assert url == default_url()
    assert url.startswith("sqlite:///") and url.endswith("gemmawatch/gemmawatch.db")


def test_postgres_urls_get_the_installed_psycopg3_driver() -> None:
    assert resolve_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert resolve_url("postgres://u@h:5433/db") == "postgresql+psycopg://u@h:5433/db"
    assert resolve_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_plain_paths_become_sqlite_urls(tmp_path: Path) -> None:
    assert resolve_url(str(tmp_path / "runs.db")) == f"sqlite:///{tmp_path / 'runs.db'}"
    assert resolve_url("~/x.db") == f"sqlite:///{Path.home() / 'x.db'}"
    assert resolve_url("sqlite:///~/x.db") == f"sqlite:///{Path.home() / 'x.db'}"
    # Something that looks like a URL stays a URL (and is rejected later), never a file.
    assert resolve_url("notadb://x") == "notadb://x"
    assert resolve_url("postgresql:/oops") == "postgresql:/oops"


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql+psycopg://user:s3cret@h/db") == "postgresql+psycopg://user:***@h/db"
    assert "s3cret" not in mask_url("weird:://user:s3cret@h")
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_json_dumps_is_strict_json() -> None:
    text = json_dumps({"a": float("nan"), "b": [1.5, float("inf")], "p": Path("/x"), "t": (1, 2)})
    assert json.loads(text) == {"a": None, "b": [1.5, None], "p": "/x", "t": [1, 2]}
    assert "NaN" not in text and "Infinity" not in text


def test_utc_datetime_stores_naive_utc_and_returns_aware_utc() -> None:
    column_type = UTCDateTime()
    dialect = sqlite.dialect()
    cest = timezone(timedelta(hours=2))
    stored = column_type.process_bind_param(datetime(2026, 5, 1, 14, 0, tzinfo=cest), dialect)
    assert stored == datetime(2026, 5, 1, 12, 0) and stored.tzinfo is None
    # Naive input is taken to be UTC already, never local time.
    assert column_type.process_bind_param(datetime(2026, 5, 1, 12, 0), dialect) == datetime(2026, 5, 1, 12, 0)
    loaded = column_type.process_result_value(datetime(2026, 5, 1, 12, 0), dialect)
    assert loaded == datetime(2026, 5, 1, 12, 0, tzinfo=UTC) and loaded.tzinfo is UTC
    assert column_type.process_bind_param(None, dialect) is None
    with pytest.raises(TypeError):
        column_type.process_bind_param("2026-05-01", dialect)  # type: ignore[arg-type]


def _metric(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "task": "t",
        "metric": "acc",
        "value": 0.5,
        "n": 10,
        "producer": "lm-eval",
        "producer_version": "0.4.9",
    }
    row.update(overrides)
    return row


def test_prepare_rows_fills_defaults_and_overrides_run_id() -> None:
    rows = prepare_rows(
        MetricResult,
        [_metric(run_id=999), _metric(stderr=float("nan"))],
        fixed={"run_id": 7},
        defaults={"filter": lambda: "none", "details": dict},
    )
    assert [r["run_id"] for r in rows] == [7, 7]
    assert rows[0]["filter"] == "none" and rows[0]["details"] == {} and rows[0]["ci_low"] is None
    assert rows[1]["stderr"] is None  # NaN in a nullable float becomes NULL
    assert set(rows[0]) == set(rows[1])  # uniform keys for one executemany


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_metric(vaule=1.0), "unknown field"),
        ({"task": "t", "metric": "acc", "value": 1.0}, r"missing required field\(s\) \['n', 'producer'"),
        (_metric(value=float("nan")), "finite number"),
        (_metric(producer=None), "'producer' must not be None"),
    ],
)
def test_prepare_rows_rejects_bad_rows(row: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_rows(MetricResult, [row], fixed={"run_id": 1}, defaults={"filter": str, "details": dict})


def test_prepare_rows_accepts_epoch_seconds_for_timestamps() -> None:
    row = {"host": "h", "source": "psutil", "metric": "cpu", "unit": "%", "value": 1.0, "interval_s": 0.5}
    (prepared,) = prepare_rows(TelemetrySample, [{**row, "ts": 0.0}], defaults={"labels": dict})
    assert prepared["ts"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert prepared["run_id"] is None and prepared["labels"] == {}
