"""The alert state machine on real databases: pending/firing/resolved, dedupe, silence, ack,
stored events and deliveries, notifiers that fail (SQLite always, PostgreSQL when marked)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from alerts_support import T0, FakeNotifier, RaisingNotifier, add_rows, make_run, probe_rows
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from gemmawatch.alerts import ThresholdRule, WindowRule, evaluate_run, evaluate_series, save_rule, seed_default_rules
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.models import AlertNotification
from gemmawatch.storage.queries import alerts as aq
from gemmawatch.storage.queries import telemetry as teq

MIN = timedelta(minutes=1)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def down_rule(**kw: Any) -> WindowRule:
    """``max(probe.up) over 1m < 1`` per target, like the default endpoint-down."""
    base: dict[str, Any] = {
        "name": "down",
        "source": "telemetry",
        "metric": "probe.up",
        "aggregation": "max",
        "window": "1m",
        "comparator": "<",
        "threshold": 1,
        "group_by": ["target"],
        "severity": "critical",
        "notify": ["json://127.0.0.1:9/hook/s3cr3t"],
    }
    return WindowRule.model_validate({**base, **kw})


def store(engine: Engine, *rules: Any) -> None:
    with session_scope(engine) as s:
        for rule in rules:
            save_rule(s, rule)


def tick(engine: Engine, now: datetime, notifier: Any, **kw: Any) -> dict[str, dict[str, Any]]:
    with session_scope(engine) as s:
        return {t["series"]: t for t in evaluate_series(s, now=now, notifier=notifier, **kw)}


def events(engine: Engine, alert_id: int) -> list[tuple[Any, ...]]:
    with session_scope(engine) as s:
        return [(e["from_state"], e["to_state"], e["value"]) for e in aq.alert_events(s, alert_id)]


def deliveries(engine: Engine, alert_id: int | None = None) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return list(reversed(aq.list_notifications(s, alert_id=alert_id)))


def alerts(engine: Engine, state: str | None = None) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return aq.list_alerts(s, state=state)


def test_for_goes_pending_then_firing_then_resolved(engine: Engine) -> None:
    store(engine, down_rule(**{"for": "2m"}))
    add_rows(engine, probe_rows([0] * 19, target="a") + probe_rows([1] * 12, start=T0 + 4 * MIN, target="a"))
    fake = FakeNotifier()

    first = tick(engine, T0 + timedelta(seconds=30), fake)["target=a"]
    assert (first["state"], first["from_state"], first["new"], first["notify"]) == ("pending", None, True, False)
    assert first["target"] == "a" and first["value"] == 0.0 and "max(probe.up) over 1m" in first["message"]
    [pending] = alerts(engine, "pending")
    assert pending["fired_at"] is None and pending["started_at"] == T0 + timedelta(seconds=30)

    still = tick(engine, T0 + 90 * timedelta(seconds=1), fake)["target=a"]
    assert (still["state"], still["new"]) == ("pending", False)
    assert fake.calls == []  # pending is never notified

    fired = tick(engine, T0 + timedelta(seconds=150), fake)["target=a"]
    assert (fired["state"], fired["from_state"], fired["alert_id"]) == ("firing", "pending", first["alert_id"])
    assert fired["notify"] is True and len(fake.calls) == 1
    assert fake.calls[0].severity == "critical" and "firing" in fake.calls[0].title
    assert fake.calls[0].urls == ["json://127.0.0.1:9/hook/s3cr3t"]

    resolved = tick(engine, T0 + 5 * MIN, fake)["target=a"]
    assert (resolved["state"], resolved["from_state"], resolved["value"]) == ("resolved", "firing", 1.0)
    assert len(fake.calls) == 2 and "resolved" in fake.calls[1].title

    assert events(engine, first["alert_id"]) == [
        (None, "pending", 0.0),
        ("pending", "firing", 0.0),
        ("firing", "resolved", 1.0),
    ]
    sent = deliveries(engine, first["alert_id"])
    assert [(d["transition"], d["ok"], d["attempts"]) for d in sent] == [("firing", True, 1), ("resolved", True, 1)]
    assert all("s3cr3t" not in d["url"] for d in sent)
    [done] = alerts(engine)
    assert done["state"] == "resolved" and done["fired_at"] == T0 + timedelta(seconds=150)
    assert done["resolved_at"] == T0 + 5 * MIN


def test_pending_resolves_quietly(engine: Engine) -> None:
    store(engine, down_rule(**{"for": "5m"}))
    add_rows(engine, probe_rows([0, 0, 0], target="a") + probe_rows([1] * 6, start=T0 + 2 * MIN, target="a"))
    fake = FakeNotifier()
    pending = tick(engine, T0 + timedelta(seconds=20), fake)["target=a"]
    gone = tick(engine, T0 + 3 * MIN, fake)["target=a"]
    assert (gone["state"], gone["from_state"], gone["notify"]) == ("resolved", "pending", False)
    assert fake.calls == [] and deliveries(engine) == []
    assert events(engine, pending["alert_id"]) == [(None, "pending", 0.0), ("pending", "resolved", 1.0)]


def test_one_alert_per_rule_and_series(engine: Engine) -> None:
    store(engine, down_rule(notify=[]))
    add_rows(engine, probe_rows([0] * 6, target="a") + probe_rows([1] * 6, target="b"))
    fake = FakeNotifier()
    first = tick(engine, T0 + MIN, fake)
    assert list(first) == ["target=a"] and first["target=a"]["state"] == "firing"
    again = tick(engine, T0 + MIN + timedelta(seconds=5), fake)
    assert again["target=a"]["alert_id"] == first["target=a"]["alert_id"] and again["target=a"]["new"] is False
    add_rows(engine, probe_rows([0] * 6, start=T0 + MIN, target="b"))
    both = tick(engine, T0 + 2 * MIN, fake)
    assert both["target=b"]["new"] is True and both["target=b"]["alert_id"] != first["target=a"]["alert_id"]
    assert sorted(a["series"] for a in alerts(engine, "firing")) == ["target=a", "target=b"]
    # The partial unique index: a second open alert for the same rule and series is refused as a duplicate.
    with session_scope(engine) as s:
        rule_id = int(aq.get_rule(s, "down")["id"])  # type: ignore[index]
        alert_id, created = aq.create_alert(s, rule_id=rule_id, series="target=a", state="firing", value=0, message="x")
    assert (alert_id, created) == (first["target=a"]["alert_id"], False)
    assert len(alerts(engine)) == 2
    assert fake.calls == []  # no receivers configured: nothing to send, nothing stored
    assert deliveries(engine) == []


def test_no_data_changes_nothing(engine: Engine) -> None:
    store(engine, down_rule())
    add_rows(engine, probe_rows([0] * 3, target="a"))
    fake = FakeNotifier()
    assert tick(engine, T0 + MIN, fake)["target=a"]["state"] == "firing"
    assert tick(engine, T0 + 10 * MIN, fake) == {}  # nothing in [9m, 10m]: the probe stopped, no verdict
    [alert] = alerts(engine, "firing")
    assert alert["value"] == 0.0 and len(fake.calls) == 1


def test_silence_suppresses_notifications_and_survives_a_refire(engine: Engine) -> None:
    store(engine, down_rule())
    rows = probe_rows([0] * 6, target="a")
    rows += probe_rows([1] * 6, start=T0 + 2 * MIN, target="a")
    rows += probe_rows([0] * 30, start=T0 + 4 * MIN, step_s=60, target="a")
    add_rows(engine, rows)
    fake = FakeNotifier()
    fired = tick(engine, T0 + MIN, fake)["target=a"]
    assert len(fake.calls) == 1
    with session_scope(engine) as s:
        aq.silence_alert(s, fired["alert_id"], T0 + 30 * MIN, at=T0 + MIN)
    resolved = tick(engine, T0 + 3 * MIN, fake)["target=a"]
    assert resolved["state"] == "resolved" and resolved["notify"] is False and len(fake.calls) == 1
    refired = tick(engine, T0 + 5 * MIN, fake)["target=a"]
    assert refired["new"] and refired["alert_id"] != fired["alert_id"] and refired["notify"] is False
    assert alerts(engine, "firing")[0]["silenced_until"] == T0 + 30 * MIN  # inherited from the silenced alert
    assert tick(engine, T0 + 12 * MIN, fake)["target=a"]["notify"] is False
    assert len(fake.calls) == 1
    # The silence ends while it still fires: announced once, then quiet again.
    late = tick(engine, T0 + 31 * MIN, fake)["target=a"]
    assert late["notify"] is True and len(fake.calls) == 2 and "firing" in fake.calls[1].title
    assert tick(engine, T0 + 32 * MIN, fake)["target=a"]["notify"] is False and len(fake.calls) == 2
    assert events(engine, fired["alert_id"])[-2:] == [("firing", "silenced", 0.0), ("firing", "resolved", 1.0)]


def test_acknowledged_alert_is_not_reannounced_but_its_resolution_is(engine: Engine) -> None:
    store(engine, down_rule())
    add_rows(engine, probe_rows([0] * 30, target="a") + probe_rows([1] * 6, start=T0 + 6 * MIN, target="a"))
    fake = FakeNotifier()
    fired = tick(engine, T0 + MIN, fake)["target=a"]
    with session_scope(engine) as s:
        aq.silence_alert(s, fired["alert_id"], T0 + 2 * MIN, at=T0 + MIN)
        assert aq.acknowledge_alert(s, fired["alert_id"], at=T0 + MIN) is True
        assert aq.acknowledge_alert(s, fired["alert_id"]) is False  # the first time is kept
    with session_scope(engine) as s:  # drop the firing delivery: only the ack may stop a re-announcement now
        s.execute(delete(AlertNotification))
    assert tick(engine, T0 + 3 * MIN, fake)["target=a"]["notify"] is False
    assert len(fake.calls) == 1
    resolved = tick(engine, T0 + 7 * MIN, fake)["target=a"]
    assert resolved["state"] == "resolved" and resolved["notify"] is True and "resolved" in fake.calls[-1].title
    [alert] = alerts(engine)
    assert alert["acknowledged_at"] == T0 + MIN
    kinds = [e[1] for e in events(engine, fired["alert_id"])]
    assert kinds == ["firing", "silenced", "acknowledged", "resolved"]


def test_a_raising_notifier_never_crashes_the_evaluator(engine: Engine) -> None:
    store(engine, down_rule())
    add_rows(engine, probe_rows([0] * 6, target="a"))
    raising = RaisingNotifier()
    got = tick(engine, T0 + MIN, raising)
    assert got["target=a"]["state"] == "firing" and raising.calls == 1
    [sent] = deliveries(engine)
    assert sent["ok"] is False and sent["transition"] == "firing" and sent["attempts"] == 0
    assert "boom" in sent["error"] and "s3cr3t" not in sent["error"] and "s3cr3t" not in sent["url"]


def test_failed_deliveries_are_stored_and_not_resent_every_tick(engine: Engine) -> None:
    store(engine, down_rule())
    add_rows(engine, probe_rows([0] * 12, target="a"))
    failing = FakeNotifier(ok=False)
    tick(engine, T0 + MIN, failing)
    tick(engine, T0 + MIN + timedelta(seconds=30), failing)
    [sent] = deliveries(engine)
    assert (sent["ok"], sent["attempts"], sent["error"]) == (False, 3, "receiver said no. Fix: check it")
    assert len(failing.calls) == 1


def test_rule_and_severity_receivers_are_merged(engine: Engine) -> None:
    store(engine, down_rule(notify=["json://127.0.0.1:9/a"]))
    add_rows(engine, probe_rows([0] * 6, target="a"))
    fake = FakeNotifier()
    routes = {"critical": ["json://127.0.0.1:9/b", "json://127.0.0.1:9/a"], "warning": ["json://127.0.0.1:9/w"]}
    tick(engine, T0 + MIN, fake, notifications=routes)
    assert fake.calls[0].urls == ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]
    assert len(deliveries(engine)) == 2


def test_a_rolled_back_evaluation_notifies_nothing(engine: Engine) -> None:
    store(engine, down_rule())
    add_rows(engine, probe_rows([0] * 6, target="a"))
    fake = FakeNotifier()
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        assert evaluate_series(s, now=T0 + MIN, notifier=fake)
        raise RuntimeError("caller fails after evaluating")
    assert fake.calls == [] and alerts(engine) == []
    assert tick(engine, T0 + MIN, fake)["target=a"]["notify"] is True  # evaluated again, for real


def test_default_endpoint_down_per_target(engine: Engine) -> None:
    with session_scope(engine) as s:
        seed_default_rules(s)
    # a: every probe fails (rows carry error_class); b: one failure among successes.
    rows = probe_rows([0] * 6, target="a") + probe_rows([1, 0, 1, 1, 1, 1], target="b")
    rows += probe_rows([1] * 6, target="a", host="h2")  # another monitor host reaches a fine
    add_rows(engine, rows)
    fake = FakeNotifier()
    got = tick(engine, T0 + 55 * timedelta(seconds=1), fake, host="h1", notifications={"critical": ["json://h/x"]})
    assert set(got) == {"target=a"}
    t = got["target=a"]
    assert (t["rule"], t["state"], t["severity"], t["target"]) == ("endpoint-down", "firing", "critical", "a")
    assert fake.calls[0].severity == "critical"
    # Across both hosts the endpoint answered: from that point of view it is up again.
    back = tick(engine, T0 + 55 * timedelta(seconds=1), fake)["target=a"]
    assert (back["state"], back["from_state"], back["value"], back["alert_id"]) == ("resolved", "firing", 1.0,
                                                                                    t["alert_id"])  # fmt: skip
    assert "within threshold" in back["message"] and "12 reading(s)" in back["message"]


def test_window_selection_by_labels_target_glob_and_host(engine: Engine) -> None:
    rows = probe_rows([1, 2], metric="probe.e2e_s", target="gemma-a", extra={"probe": "canary"})
    rows += probe_rows([3], metric="probe.e2e_s", target="gemma-b", extra={"probe": "long"})
    rows += probe_rows([4], metric="probe.e2e_s", target="other", host="h2", extra={"probe": "x"})
    rows += probe_rows([5], metric="probe.ttft_s", target="gemma-a")
    add_rows(engine, rows)
    window = {"metric": "probe.e2e_s", "start": T0, "end": T0 + MIN}
    with session_scope(engine) as s:
        assert [v for _, v in teq.telemetry_window(s, **window)] == [1, 3, 4, 2]
        assert [v for _, v in teq.telemetry_window(s, **window, target="gemma-*")] == [1, 3, 2]
        assert [v for _, v in teq.telemetry_window(s, **window, labels={"probe": "canary"})] == [1, 2]
        assert [v for _, v in teq.telemetry_window(s, **window, host="h2")] == [4]
        assert teq.telemetry_window(s, **{**window, "end": T0 - MIN}) == []
        [(ts, value)] = teq.telemetry_window(s, **window, target="gemma-b")
    assert ts == T0 and value == 3


def test_run_rules_honour_for_across_runs(engine: Engine) -> None:
    slow = ThresholdRule(name="slow", task="latency", metric="e2e_s_p95", comparator=">", threshold=10.0, for_s=3600)
    store(engine, slow)
    fake = FakeNotifier()
    first = make_run(engine, metrics={("latency", "e2e_s_p95"): 12.0})
    with session_scope(engine) as s:
        [t] = evaluate_run(s, first, now=T0, notifier=fake)
    assert (t["state"], t["series"], t["target"]) == ("pending", "target=gemma-test", "gemma-test")
    second = make_run(engine, metrics={("latency", "e2e_s_p95"): 13.0})
    with session_scope(engine) as s:
        [t2] = evaluate_run(s, second, now=T0 + 2 * timedelta(hours=1), notifier=fake)
    assert (t2["state"], t2["from_state"], t2["alert_id"]) == ("firing", "pending", t["alert_id"])
    assert f"run {second}" in t2["message"]
    [alert] = alerts(engine, "firing")
    assert alert["run_id"] == second and alert["value"] == 13.0
    assert fake.calls == []  # no receivers for this rule
