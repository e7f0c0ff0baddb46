"""`gemmawatch alerts list|ack|silence|rules`: the command-line contract (real console entry point)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alerts_support import T0, add_rows, probe_rows
from cli_support import assert_user_error, gw

from gemmawatch.alerts import evaluate_series, seed_default_rules
from gemmawatch.errors import UserError
from gemmawatch.storage.engine import get_engine, session_scope

LIST_KEYS = {"id", "rule", "state", "severity", "value", "fired_at", "resolved_at", "target", "acknowledged_at",
             "silenced_until", "message", "series", "started_at", "run_id"}  # fmt: skip


@pytest.fixture
def db(sqlite_url: str) -> str:
    """A database with one firing endpoint-down alert (target gemma-prod) and one resolved alert."""
    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        seed_default_rules(s)
    add_rows(engine, probe_rows([0] * 6, target="gemma-prod") + probe_rows([0] * 6, target="gemma-dev"))
    add_rows(engine, probe_rows([1] * 6, start=T0 + timedelta(minutes=2), target="gemma-dev"))
    with session_scope(engine) as s:
        evaluate_series(s, now=T0 + timedelta(minutes=1))
    with session_scope(engine) as s:
        evaluate_series(s, now=T0 + timedelta(minutes=3))
    return sqlite_url


def alerts_json(db: str, *args: str) -> list[dict]:
    proc = gw("alerts", "list", "--json", "--db", db, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_list_json_contract_and_state_filter(db: str) -> None:
    rows = alerts_json(db)
    assert len(rows) == 2 and all(set(r) == LIST_KEYS for r in rows)
    by_target = {r["target"] or r["series"].removeprefix("target="): r for r in rows}
    prod, dev = by_target["gemma-prod"], by_target["gemma-dev"]
    assert (prod["rule"], prod["state"], prod["severity"], prod["value"]) == (
        "endpoint-down",
        "firing",
        "critical",
        0.0,
    )
    assert prod["fired_at"].startswith("2026-12-01T12:01:00") and prod["resolved_at"] is None
    assert dev["state"] == "resolved" and dev["resolved_at"].startswith("2026-12-01T12:03:00")
    assert [r["state"] for r in alerts_json(db, "--state", "firing")] == ["firing"]
    assert alerts_json(db, "--state", "pending") == []
    table = gw("alerts", "list", "--db", db)
    assert table.returncode == 0 and "endpoint-down" in table.stdout and "gemma-prod" in table.stdout


def test_ack_and_silence(db: str) -> None:
    [firing] = alerts_json(db, "--state", "firing")
    ack = gw("alerts", "ack", str(firing["id"]), "--db", db)
    assert ack.returncode == 0 and f"Alert {firing['id']} acknowledged." in ack.stdout
    again = gw("alerts", "ack", str(firing["id"]), "--db", db)
    assert again.returncode == 0 and "already acknowledged" in again.stdout
    before = datetime.now(UTC)
    silenced = gw("alerts", "silence", str(firing["id"]), "--for", "2h", "--db", db)
    assert silenced.returncode == 0, silenced.stderr
    until = gw("alerts", "silence", str(firing["id"]), "--until", "2099-01-02T03:04", "--db", db)
    assert until.returncode == 0 and "2099-01-02 03:04:00 UTC" in until.stdout
    [row] = alerts_json(db, "--state", "firing")
    assert row["acknowledged_at"] is not None and row["silenced_until"].startswith("2099-01-02T03:04:00")
    assert before < datetime.fromisoformat(row["acknowledged_at"]) + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("ack", "999"), ["Unknown alert id 999", "gemmawatch alerts list"]),
        (("silence", "999", "--for", "2h"), ["Unknown alert id 999"]),
        (("silence", "1", "--until", "2001-01-01T00:00"), ["not in the future", "Fix:"]),
        (("list", "--state", "open"), ["Unknown alert state 'open'", "pending, firing or resolved"]),
    ],
)
def test_user_errors_are_one_line_exit_2(db: str, args: tuple[str, ...], fragments: list[str]) -> None:
    assert_user_error(gw("alerts", *args, "--db", db), *fragments)


@pytest.mark.parametrize(
    ("for_", "until", "fragments"),
    [
        ("soon", None, ["--for 'soon'", "Fix:"]),
        (None, None, ["--for DURATION", "--until"]),
        ("2h", "2099-01-01", ["either --for"]),
        (None, "tomorrow", ["ISO 8601", "Fix:"]),
    ],
)
def test_silence_time_errors(for_: str | None, until: str | None, fragments: list[str]) -> None:
    from gemmawatch.cli.commands_alerts import _until

    with pytest.raises(UserError) as info:
        _until(for_, until)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_silence_times() -> None:
    from gemmawatch.cli.commands_alerts import _until

    assert _until(None, "2099-01-02T03:04") == datetime(2099, 1, 2, 3, 4, tzinfo=UTC)  # no zone: UTC
    assert _until(None, "2099-01-02T03:04+01:00") == datetime(2099, 1, 2, 2, 4, tzinfo=UTC)
    soon = _until("1h30m", None) - datetime.now(UTC)
    assert timedelta(minutes=89) < soon <= timedelta(minutes=90)


def test_rules_lists_defaults_and_config_rules(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "gemmawatch.yaml"
    config.write_text(
        """
alerts:
  - name: slow-canary
    source: telemetry
    metric: probe.e2e_s
    aggregation: p95
    window: 5m
    for: 2m
    comparator: ">"
    threshold: 3
    notify: ["json://127.0.0.1:9/hooks/s3cr3t"]
  - name: max-memory
    metric: max(process.rss_mb)
    comparator: ">"
    threshold: 16000
    enabled: false
"""
    )
    proc = gw("alerts", "rules", "--json", "--db", sqlite_url, "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    rules = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"endpoint-down", "max-response-time", "score-floor", "slow-canary", "max-memory"} <= set(rules)
    canary = rules["slow-canary"]
    assert (canary["kind"], canary["data_source"], canary["origin"], canary["for"], canary["window"]) == (
        "threshold", "telemetry", "config", "2m", "5m",
    )  # fmt: skip
    assert canary["condition"] == "p95(probe.e2e_s) over 5m > 3 per host, target"
    assert canary["notify"] and "s3cr3t" not in json.dumps(canary)
    memory = rules["max-memory"]
    assert (memory["origin"], memory["enabled"], memory["threshold"]) == ("config", False, 16000.0)
    assert rules["endpoint-down"]["condition"] == "max(probe.up) over 1m < 1 per target"
    table = gw("alerts", "rules", "--db", sqlite_url, "--config", str(config))
    assert table.returncode == 0 and "slow-canary" in table.stdout and "endpoint-down" in table.stdout


def test_rules_with_a_bad_config_is_a_user_error(tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "gemmawatch.yaml"
    config.write_text("alerts:\n  - {name: w, source: telemetry, metric: m, aggregation: median, comparator: '>', "
                      "threshold: 1}\n")  # fmt: skip
    proc = gw("alerts", "rules", "--db", sqlite_url, "--config", str(config))
    assert_user_error(proc, "alert rule 'w' (alerts[0])", "field 'aggregation'", "Fix: use one of last, avg")
