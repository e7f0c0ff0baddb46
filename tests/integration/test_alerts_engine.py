"""The alert engine against real databases (SQLite always, PostgreSQL when marked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gemmawatch.alerts import DEFAULT_RULES, ThresholdRule, evaluate_run, rules_from_db, seed_default_rules
from gemmawatch.alerts.engine import sync_config_rules
from gemmawatch.errors import UnknownNameError
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import alerts as aq
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import targets as tq
from gemmawatch.storage.queries import telemetry as teq


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def make_run(
    engine: Engine,
    *,
    target: str = "gemma-test",
    metrics: dict[tuple[str, str], float] | None = None,
    rss_mb: list[float] | None = None,
) -> int:
    with session_scope(engine) as s:
        tid = tq.upsert_target(s, name=target, backend="transformers", model_id="bundled:test")
        run_id = rq.create_run(s, kind="eval", target_id=tid, config={}, host="h", versions={})
        rows: list[dict[str, Any]] = [
            {"task": t, "metric": m, "value": v, "n": 10, "producer": "test", "producer_version": "0"}
            for (t, m), v in (metrics or {}).items()
        ]
        if rows:
            mq.add_metrics(s, run_id, rows)
        if rss_mb:
            now = datetime.now(UTC)
            teq.add_telemetry(
                s,
                [
                    {
                        "run_id": run_id,
                        "host": "h",
                        "source": "psutil",
                        "metric": "process.rss_mb",
                        "unit": "MB",
                        "value": v,
                        "ts": now,
                        "interval_s": 0.5,
                        "labels": {"pid": 1},
                    }
                    for v in rss_mb
                ],
            )
        rq.finish_run(s, run_id, status="completed")
    return run_id


def evaluate(engine: Engine, run_id: int, *, seed: bool = True) -> dict[str, dict[str, Any]]:
    with session_scope(engine) as s:
        if seed:
            seed_default_rules(s)
        return {t["rule"]: t for t in evaluate_run(s, run_id)}


def alerts(engine: Engine, state: str | None = None) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return aq.list_alerts(s, state=state)


def test_seeding_defaults_is_idempotent_and_keeps_user_choices(engine: Engine) -> None:
    with session_scope(engine) as s:
        first = seed_default_rules(s)
    with session_scope(engine) as s:
        second = seed_default_rules(s)
        rows = aq.list_rules(s)
    assert first == second and len(set(first)) == len(DEFAULT_RULES)
    assert sorted(r["name"] for r in rows) == sorted(r.name for r in DEFAULT_RULES)
    assert {r["source"] for r in rows} == {"default"}
    # The user disables one default and overrides another from the config file.
    with session_scope(engine) as s:
        aq.upsert_rule(
            s,
            name="min-throughput",
            kind="threshold",
            metric="output_tokens_per_s_mean",
            task="latency",
            comparator="<",
            threshold=5.0,
            severity="warning",
            enabled=False,
        )
        sync_config_rules(
            s,
            [
                ThresholdRule(
                    name="max-response-time", task="latency", metric="e2e_s_p95", comparator=">", threshold=30.0
                )
            ],
        )
    with session_scope(engine) as s:
        seed_default_rules(s)
        by_name = {r["name"]: r for r in aq.list_rules(s)}
        enabled = {r.name: r for r in rules_from_db(s)}
    assert by_name["min-throughput"]["enabled"] is False and "min-throughput" not in enabled
    assert by_name["max-response-time"]["threshold"] == 30.0 and by_name["max-response-time"]["source"] == "config"
    assert enabled["max-response-time"].threshold == 30.0
    assert len(enabled) == len(DEFAULT_RULES) - 1


def test_slow_run_fires_and_a_fast_run_resolves(engine: Engine) -> None:
    slow = make_run(engine, metrics={("latency", "e2e_s_p95"): 12.0, ("latency", "success_rate"): 1.0})
    fired = evaluate(engine, slow)
    t = fired["max-response-time"]
    assert (t["state"], t["value"], t["new"]) == ("firing", 12.0, True)
    assert "\n" not in t["message"] and "12" in t["message"] and "10" in t["message"]
    assert f"run {slow}" in t["message"]
    assert "min-success-rate" not in fired  # within threshold and nothing was firing: no transition
    firing = alerts(engine, "firing")
    assert [(a["rule"], a["run_id"], a["value"], a["target"]) for a in firing] == [
        ("max-response-time", slow, 12.0, "gemma-test")
    ]

    fast = make_run(engine, metrics={("latency", "e2e_s_p95"): 1.0})
    resolved = evaluate(engine, fast)
    assert resolved["max-response-time"]["state"] == "resolved"
    assert resolved["max-response-time"]["alert_id"] == t["alert_id"]
    assert alerts(engine, "firing") == []
    [done] = alerts(engine, "resolved")
    assert done["value"] == 1.0 and done["resolved_at"] is not None


def test_one_firing_alert_per_rule_and_target(engine: Engine) -> None:
    r1 = make_run(engine, metrics={("latency", "e2e_s_p95"): 12.0})
    r2 = make_run(engine, metrics={("latency", "e2e_s_p95"): 15.0})
    first = evaluate(engine, r1)["max-response-time"]
    second = evaluate(engine, r2)["max-response-time"]
    assert first["new"] is True and second["new"] is False
    assert first["alert_id"] == second["alert_id"]
    [alert] = alerts(engine, "firing")
    assert (alert["value"], alert["run_id"]) == (15.0, r2) and f"run {r2}" in alert["message"]
    # Another target breaching the same rule gets its own alert.
    other = make_run(engine, target="gemma-other", metrics={("latency", "e2e_s_p95"): 11.0})
    evaluate(engine, other)
    assert sorted(a["target"] for a in alerts(engine, "firing")) == ["gemma-other", "gemma-test"]


def test_no_data_does_not_resolve(engine: Engine) -> None:
    slow = make_run(engine, metrics={("latency", "e2e_s_p95"): 12.0})
    evaluate(engine, slow)
    # A run without the latency probe (only a smoke score above the floor) says nothing about latency.
    quiet = make_run(engine, metrics={("smoke_mc_x", "acc"): 0.6})
    assert evaluate(engine, quiet) == {}
    [alert] = alerts(engine, "firing")
    assert alert["rule"] == "max-response-time" and alert["run_id"] == slow
    empty = make_run(engine)
    assert evaluate(engine, empty) == {}
    assert len(alerts(engine, "firing")) == 1


def test_score_floor_memory_and_throughput(engine: Engine) -> None:
    run = make_run(
        engine,
        metrics={
            ("smoke_mc", "acc"): 0.2,
            # A single subject below chance is noise: the floor watches the pooled group only.
            ("smoke_mc_math", "acc"): 0.1,
            ("latency", "output_tokens_per_s_mean"): 4.0,
            ("latency", "success_rate"): 0.9,
        },
        rss_mb=[1000.0, 9000.0, 2000.0],
    )
    got = evaluate(engine, run)
    assert {k: v["state"] for k, v in got.items()} == {
        "score-floor": "firing",
        "max-memory": "firing",
        "min-throughput": "firing",
        "min-success-rate": "firing",
    }
    assert got["score-floor"]["value"] == 0.2 and "smoke_mc/acc" in got["score-floor"]["message"]
    assert got["max-memory"]["value"] == 9000.0 and "max(process.rss_mb)" in got["max-memory"]["message"]
    assert {a["severity"] for a in alerts(engine, "firing")} == {"warning", "critical"}


def test_equal_to_threshold_does_not_fire(engine: Engine) -> None:
    run = make_run(engine, metrics={("latency", "e2e_s_p95"): 10.0, ("smoke_mc", "acc"): 0.25})
    assert evaluate(engine, run) == {}
    assert alerts(engine) == []


def test_disabled_rules_are_not_evaluated(engine: Engine) -> None:
    with session_scope(engine) as s:
        seed_default_rules(s)
        aq.upsert_rule(
            s,
            name="max-response-time",
            kind="threshold",
            metric="e2e_s_p95",
            task="latency",
            comparator=">",
            threshold=10.0,
            severity="warning",
            enabled=False,
        )
    run = make_run(engine, metrics={("latency", "e2e_s_p95"): 99.0})
    assert "max-response-time" not in evaluate(engine, run)
    assert alerts(engine) == []


def test_unknown_run_is_a_clear_error(engine: Engine) -> None:
    with session_scope(engine) as s, pytest.raises(UnknownNameError, match="Unknown run 999999"):
        evaluate_run(s, 999999)
