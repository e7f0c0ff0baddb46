"""Migration 0004 keeps existing alerts working and its downgrade keeps what 0003 can hold."""

from __future__ import annotations

import pytest
from alembic import command
from alerts_support import T0, make_run
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from gemmawatch.alerts import WindowRule, evaluate_run, save_rule, seed_default_rules
from gemmawatch.storage import get_engine, upgrade
from gemmawatch.storage.engine import alembic_config, dispose_engines, session_scope
from gemmawatch.storage.queries import alerts as aq


def _alembic(url: str, action: str, revision: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def _sql(url: str, *statements: str) -> list[list[tuple]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return [list(conn.execute(text(s)).all()) if s.lstrip().upper().startswith("SELECT") else
                    (conn.execute(text(s)), [])[1] for s in statements]  # fmt: skip
    finally:
        engine.dispose()


def test_old_alerts_keep_their_identity_and_can_resolve(empty_db_url: str) -> None:
    url = empty_db_url
    _alembic(url, "upgrade", "0003")
    _sql(
        url,
        "INSERT INTO targets (name, backend, model_id, options, created_at) "
        "VALUES ('gemma-test', 'transformers', 'bundled:test', '{}', '2026-12-01 10:00:00')",
        "INSERT INTO alert_rules (name, kind, metric, task, comparator, threshold, severity, enabled, description, "
        "source, created_at) VALUES ('max-response-time', 'threshold', 'e2e_s_p95', 'latency', '>', 10, 'warning', "
        "TRUE, '', 'default', '2026-12-01 10:00:00')",
        "INSERT INTO alerts (rule_id, target_id, state, value, message, fired_at) "
        "VALUES (1, 1, 'firing', 12, 'slow', '2026-12-01 11:00:00')",
        "INSERT INTO alerts (rule_id, target_id, state, value, message, fired_at, resolved_at) "
        "VALUES (1, NULL, 'resolved', 11, 'old', '2026-12-01 09:00:00', '2026-12-01 09:30:00')",
    )
    assert upgrade(url) == "0004"
    [old_firing, old_resolved] = _sql(url, "SELECT id, series, started_at, fired_at FROM alerts ORDER BY id")[0]
    assert old_firing[1] == "target=gemma-test"
    assert str(old_firing[2])[:19] == str(old_firing[3])[:19] == "2026-12-01 11:00:00"  # started_at = fired_at
    assert old_resolved[1] == ""
    engine = get_engine(url)
    fast = make_run(engine, metrics={("latency", "e2e_s_p95"): 1.0})
    with session_scope(engine) as s:
        seed_default_rules(s)
        [t] = evaluate_run(s, fast, now=T0)
    assert (t["state"], t["alert_id"], t["from_state"]) == ("resolved", old_firing[0], "firing")
    dispose_engines()


def test_downgrade_drops_what_0003_cannot_hold(empty_db_url: str) -> None:
    url = empty_db_url
    engine = get_engine(url)
    with session_scope(engine) as s:
        seed_default_rules(s)
        save_rule(s, WindowRule(name="hot", source="telemetry", metric="gpu.temp", comparator=">", threshold=80))
    run_id = make_run(engine)
    with session_scope(engine) as s:
        rule = int(aq.get_rule(s, "max-response-time")["id"])  # type: ignore[index]
        hot = int(aq.get_rule(s, "hot")["id"])  # type: ignore[index]
        tid = s.execute(text("SELECT target_id FROM runs WHERE id = :r"), {"r": run_id}).scalar()
        kept, _ = aq.create_alert(s, rule_id=rule, series="target=gemma-test", state="firing", value=1, message="a",
                                  target_id=tid, at=T0)  # fmt: skip
        newer, _ = aq.create_alert(s, rule_id=rule, series="target=gemma-test,x=1", state="firing", value=2,
                                   message="b", target_id=tid, at=T0)  # fmt: skip
        aq.create_alert(s, rule_id=rule, series="p", state="pending", value=3, message="c", at=T0)
        aq.create_alert(s, rule_id=hot, series="host=h", state="firing", value=90, message="d", at=T0)
        aq.acknowledge_alert(s, kept)
    dispose_engines()
    _alembic(url, "downgrade", "0003")
    rows = _sql(url, "SELECT id, state FROM alerts ORDER BY id", "SELECT name FROM alert_rules WHERE name = 'hot'")
    assert rows[0] == [(kept, "resolved"), (newer, "firing")] and rows[1] == []
    check = create_engine(url, poolclass=NullPool)
    try:
        with check.connect() as conn:
            inspector = inspect(conn)
            columns = {c["name"] for c in inspector.get_columns("alerts")}
            indexes = {ix["name"] for ix in inspector.get_indexes("alerts")}
            tables = set(inspector.get_table_names())
    finally:
        check.dispose()
    assert not {"series", "started_at", "silenced_until"} & columns
    assert "uq_alerts_rule_id_target_id_firing" in indexes
    assert not {"alert_events", "notifications"} & tables
    assert upgrade(url) == "0004"


def test_alert_constraints_after_migrating(db_url: str) -> None:
    engine = get_engine(db_url)
    with engine.connect() as conn:
        inspector = inspect(conn)
        checks = {t: {ck["name"] for ck in inspector.get_check_constraints(t)} for t in
                  ("alert_rules", "alerts", "alert_events", "notifications")}  # fmt: skip
        keys = {fk["name"]: fk for fk in inspector.get_foreign_keys("notifications")}
        keys.update({fk["name"]: fk for fk in inspector.get_foreign_keys("alert_events")})
    assert checks == {
        "alert_rules": {"ck_alert_rules_comparator", "ck_alert_rules_kind", "ck_alert_rules_data_source"},
        "alerts": {"ck_alerts_state"},
        "alert_events": {"ck_alert_events_to_state"},
        "notifications": {"ck_notifications_transition"},
    }
    for name in ("fk_notifications_alert_id_alerts", "fk_alert_events_alert_id_alerts"):
        assert keys[name]["options"].get("ondelete") == "CASCADE"
    with session_scope(engine) as s:
        seed_default_rules(s)
        rule = int(aq.get_rule(s, "max-memory")["id"])  # type: ignore[index]
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.execute(text("INSERT INTO alerts (rule_id, series, state, value, message, started_at) "
                       "VALUES (:r, '', 'open', 1, 'x', CURRENT_TIMESTAMP)"), {"r": rule})  # fmt: skip
