"""Every query function, round-tripped through SQLite and PostgreSQL."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.models import MetricResult, Sample, TelemetrySample
from gemmawatch.storage.queries import alerts, metrics, runs, samples, targets, telemetry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def _new_run(engine: Engine, *, target: str = "gemma-3-270m", kind: str = "eval") -> tuple[int, int]:
    with session_scope(engine) as s:
        target_id = targets.upsert_target(
            s, name=target, backend="transformers", model_id="bundled:gemma-3-270m", dtype="float32"
        )
        run_id = runs.create_run(
            s,
            kind=kind,
            target_id=target_id,
            config={"tasks": ["smoke_gen"], "limit": 5},
            host="box",
            versions={"torch": "2.13.0"},
            label="nightly",
        )
    return target_id, run_id


def _metric(task: str, metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "task": task,
        "metric": metric,
        "value": value,
        "n": 20,
        "producer": "lm-eval",
        "producer_version": "0.4.9",
        **extra,
    }


def _aware_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_upsert_target_updates_in_place(engine: Engine) -> None:
    with session_scope(engine) as s:
        first = targets.upsert_target(s, name="g", backend="transformers", model_id="a", options={"k": [1, 2]})
        again = targets.upsert_target(s, name="g", backend="transformers", model_id="b", dtype="bfloat16")
        other = targets.upsert_target(s, name="h", backend="transformers", model_id="c")
    assert first == again != other
    with session_scope(engine) as s:
        listed = targets.list_targets(s)
        assert targets.get_target(s, "missing") is None
    assert [t["name"] for t in listed] == ["g", "h"]
    g = listed[0]
    assert (g["model_id"], g["dtype"], g["options"]) == ("b", "bfloat16", {})
    assert _aware_utc(g["created_at"])


def test_run_lifecycle_and_summary(engine: Engine) -> None:
    target_id, run_id = _new_run(engine)
    with session_scope(engine) as s:
        (running,) = runs.list_runs(s)
        assert running["status"] == "running" and running["finished_at"] is None
        metrics.add_metrics(
            s,
            run_id,
            [
                _metric("smoke_mc_math", "acc", 0.75, stderr=0.1, ci_low=0.5, ci_high=0.9, higher_is_better=True),
                _metric("latency", "e2e_s_p95", 1.25, producer="gemmawatch.latency", details={"unit": "s"}),
            ],
        )
        samples.add_samples(s, run_id, [{"task": "smoke_gen", "doc_id": 0, "prompt": "Hi", "output": "Hello"}])
        runs.finish_run(s, run_id, status="completed")
    with session_scope(engine) as s:
        summary = runs.run_summary(s, run_id)
        listed = runs.list_runs(s)
        assert runs.run_summary(s, run_id + 1000) is None
    assert summary is not None
    assert summary["target"] == "gemma-3-270m"
    assert summary["target_info"] == {
        "backend": "transformers",
        "model_id": "bundled:gemma-3-270m",
        "revision": None,
        "dtype": "float32",
        "quantization": None,
    }
    assert (summary["kind"], summary["label"], summary["status"], summary["host"]) == (
        "eval",
        "nightly",
        "completed",
        "box",
    )
    assert summary["config"] == {"tasks": ["smoke_gen"], "limit": 5}
    assert summary["versions"] == {"torch": "2.13.0"}
    assert _aware_utc(summary["started_at"]) and _aware_utc(summary["finished_at"])
    assert summary["finished_at"] >= summary["started_at"]
    assert [(m["task"], m["metric"], m["filter"]) for m in summary["metrics"]] == [
        ("latency", "e2e_s_p95", "none"),
        ("smoke_mc_math", "acc", "none"),
    ]
    acc = summary["metrics"][1]
    assert (acc["value"], acc["stderr"], acc["ci_low"], acc["ci_high"], acc["n"]) == (0.75, 0.1, 0.5, 0.9, 20)
    assert acc["higher_is_better"] is True and summary["metrics"][0]["higher_is_better"] is None
    assert (summary["samples_count"], summary["telemetry_count"]) == (1, 0)
    assert listed[0]["id"] == run_id and listed[0]["target"] == "gemma-3-270m"
    assert set(listed[0]) == {"id", "kind", "target", "label", "status", "started_at", "finished_at", "error"}
    pickle.loads(pickle.dumps(summary))  # plain data, safe for st.cache_data


def test_list_runs_filters_and_orders_newest_first(engine: Engine) -> None:
    _, first = _new_run(engine)
    _, second = _new_run(engine, kind="demo")
    _, third = _new_run(engine, target="other")
    with session_scope(engine) as s:
        runs.finish_run(s, first, status="failed", error="boom")
        assert [r["id"] for r in runs.list_runs(s)] == [third, second, first]
        assert [r["id"] for r in runs.list_runs(s, limit=2)] == [third, second]
        assert [r["id"] for r in runs.list_runs(s, kind="demo")] == [second]
        (failed,) = runs.list_runs(s, status="failed")
        assert (failed["id"], failed["error"]) == (first, "boom")
        with pytest.raises(ValueError, match="status"):
            runs.finish_run(s, first, status="done")
        with pytest.raises(UnknownNameError, match="Unknown run id"):
            runs.finish_run(s, 999_999, status="completed")


def test_metrics_for_runs(engine: Engine) -> None:
    _, a = _new_run(engine, target="a")
    _, b = _new_run(engine, target="b")
    with session_scope(engine) as s:
        assert metrics.add_metrics(s, a, [_metric("t", "acc", 0.5, filter="strict", task_version="1.0")]) == 1
        assert metrics.add_metrics(s, b, [_metric("t", "acc", 0.6), _metric("t", "f1", 0.7)]) == 2
        assert metrics.add_metrics(s, b, []) == 0
    with session_scope(engine) as s:
        rows = metrics.metrics_for_runs(s, [b, a, b])
        assert metrics.metrics_for_runs(s, []) == []
    assert [(r["run_id"], r["target"], r["metric"]) for r in rows] == [(a, "a", "acc"), (b, "b", "acc"), (b, "b", "f1")]
    assert (rows[0]["filter"], rows[0]["task_version"], rows[0]["details"]) == ("strict", "1.0", {})


def test_samples_paging_filter_and_search(engine: Engine) -> None:
    _, run_id = _new_run(engine)
    rows = [
        {
            "task": "b_task",
            "doc_id": i,
            "prompt": f"Question {i}",
            "output": "Paris" if i == 3 else "no",
            "scores": {"em": 1.0 if i == 3 else 0.0},
        }
        for i in range(5)
    ] + [
        {
            "task": "a_task",
            "doc_id": 1,
            "prompt": [{"role": "user", "content": "Where is 100%_ÉCOLE?"}],
            "output": "",
            "target": "x",
            "latency_s": 0.5,
            "ttft_s": 0.1,
            "tpot_s": float("nan"),
            "input_tokens": 7,
            "output_tokens": 1,
            "token_source": "tokenizer",
            "error": "timeout",
            "started_at": datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
            "scores": {"bleu": float("nan")},
        },
        {"task": "a_task", "doc_id": 0, "prompt": "First", "output": "PARIS!"},
    ]
    with session_scope(engine) as s:
        assert samples.add_samples(s, run_id, rows) == 7
    with session_scope(engine) as s:
        page = samples.list_samples(s, run_id, limit=3)
        assert [(r["task"], r["doc_id"]) for r in page] == [("a_task", 0), ("a_task", 1), ("b_task", 0)]
        nxt = samples.list_samples(s, run_id, offset=3, limit=3)
        assert [(r["task"], r["doc_id"]) for r in nxt] == [("b_task", 1), ("b_task", 2), ("b_task", 3)]
        assert [r["doc_id"] for r in samples.list_samples(s, run_id, task="b_task", offset=4)] == [4]
        assert {(r["task"], r["doc_id"]) for r in samples.list_samples(s, run_id, search="paris")} == {
            ("a_task", 0),
            ("b_task", 3),
        }
        assert [r["doc_id"] for r in samples.list_samples(s, run_id, search="question 2")] == [2]
        # % and _ are literal, and non-ASCII case folding is consistent with the stored text.
        assert [r["doc_id"] for r in samples.list_samples(s, run_id, search="100%_É")] == [1]
        assert samples.list_samples(s, run_id, search="100%x") == []
        assert samples.count_samples(s, run_id) == 7
        assert samples.count_samples(s, run_id, "a_task") == 2
        assert samples.count_samples(s, run_id, search="paris") == 2
        assert samples.tasks_for_run(s, run_id) == ["a_task", "b_task"]
        assert samples.tasks_for_run(s, run_id + 1000) == []
    chat = page[1]
    assert chat["prompt"].startswith('[{"role": "user"')
    assert chat["tpot_s"] is None and chat["scores"] == {"bleu": None}
    assert chat["started_at"] == datetime(2026, 3, 1, 12, 0, tzinfo=UTC) and _aware_utc(chat["started_at"])
    assert (chat["latency_s"], chat["input_tokens"], chat["token_source"], chat["error"]) == (
        0.5,
        7,
        "tokenizer",
        "timeout",
    )
    assert page[0]["scores"] == {} and page[0]["started_at"] is None


def test_telemetry_series_and_summary(engine: Engine) -> None:
    _, run_id = _new_run(engine)
    base = {"run_id": run_id, "host": "box", "interval_s": 0.5}
    rows = [
        {**base, "source": "psutil", "metric": "cpu_percent", "unit": "%", "value": v, "ts": T0 + timedelta(seconds=i)}
        for i, v in enumerate([10.0, 30.0, 20.0])
    ] + [
        {
            **base,
            "source": "nvml",
            "metric": "gpu_mem_mb",
            "unit": "MB",
            "value": 1024.0,
            "ts": T0,
            "labels": {"gpu": 0},
        },
        {**base, "run_id": None, "source": "psutil", "metric": "cpu_percent", "unit": "%", "value": 99.0, "ts": T0},
    ]
    with session_scope(engine) as s:
        assert telemetry.add_telemetry(s, rows) == 5
    with session_scope(engine) as s:
        series = telemetry.telemetry_for_run(s, run_id)
        cpu = telemetry.telemetry_for_run(s, run_id, metrics=["cpu_percent"])
        summary = telemetry.telemetry_summary(s, run_id)
        assert runs.run_summary(s, run_id)["telemetry_count"] == 4  # type: ignore[index]
    assert len(series) == 4 and all(_aware_utc(r["ts"]) for r in series)
    assert [r["value"] for r in cpu] == [10.0, 30.0, 20.0]
    assert cpu[0]["ts"] == T0 and cpu[0]["labels"] == {}
    assert summary == [
        {
            "source": "nvml",
            "metric": "gpu_mem_mb",
            "unit": "MB",
            "n": 1,
            "min": 1024.0,
            "avg": 1024.0,
            "max": 1024.0,
            "interval_s": 0.5,
            "first_ts": T0,
            "last_ts": T0,
        },
        {
            "source": "psutil",
            "metric": "cpu_percent",
            "unit": "%",
            "n": 3,
            "min": 10.0,
            "avg": pytest.approx(20.0),
            "max": 30.0,
            "interval_s": 0.5,
            "first_ts": T0,
            "last_ts": T0 + timedelta(seconds=2),
        },
    ]


def test_delete_run_cascades_to_children(engine: Engine) -> None:
    target_id, run_id = _new_run(engine)
    _, kept = _new_run(engine)
    with session_scope(engine) as s:
        for rid in (run_id, kept):
            metrics.add_metrics(s, rid, [_metric("t", "acc", 1.0)])
            samples.add_samples(s, rid, [{"task": "t", "doc_id": 0, "prompt": "p", "output": "o"}])
            telemetry.add_telemetry(
                s,
                [
                    {
                        "run_id": rid,
                        "host": "h",
                        "source": "psutil",
                        "metric": "m",
                        "unit": "",
                        "value": 1.0,
                        "ts": T0,
                        "interval_s": 1.0,
                    }
                ],
            )
        rule_id = alerts.upsert_rule(
            s, name="r", kind="threshold", metric="acc", comparator="<", threshold=0.5, severity="warning"
        )
        alert_id = alerts.fire_alert(s, rule_id=rule_id, run_id=run_id, target_id=target_id, value=0.1, message="low")
    with session_scope(engine) as s:
        assert runs.delete_run(s, run_id) is True
        assert runs.delete_run(s, run_id) is False
    with session_scope(engine) as s:
        for model in (MetricResult, Sample, TelemetrySample):
            assert s.scalar(select(func.count()).select_from(model).where(model.run_id == run_id)) == 0
            assert s.scalar(select(func.count()).select_from(model).where(model.run_id == kept)) == 1
        (alert,) = alerts.list_alerts(s)
    # The alert history survives the run; it just no longer points at it.
    assert (alert["id"], alert["run_id"], alert["target"]) == (alert_id, None, "gemma-3-270m")


def test_alert_rules_upsert_and_list(engine: Engine) -> None:
    with session_scope(engine) as s:
        rid = alerts.upsert_rule(
            s, name="slow", kind="threshold", metric="e2e_s_p95", comparator=">", threshold=10, severity="warning"
        )
        same = alerts.upsert_rule(
            s,
            name="slow",
            kind="threshold",
            metric="e2e_s_p95",
            comparator=">=",
            threshold=5.0,
            severity="critical",
            task="latency",
            description="p95 too slow",
            source="config",
        )
        alerts.upsert_rule(
            s, name="acc", kind="threshold", metric="acc", comparator="<", threshold=0.3, severity="info", enabled=False
        )
        with pytest.raises(ConfigError, match="comparator"):
            alerts.upsert_rule(
                s, name="bad", kind="threshold", metric="m", comparator="!=", threshold=1, severity="info"
            )
    assert rid == same
    with session_scope(engine) as s:
        all_rules = alerts.list_rules(s)
        enabled = alerts.list_rules(s, enabled_only=True)
    assert [r["name"] for r in all_rules] == ["acc", "slow"]
    assert [r["name"] for r in enabled] == ["slow"]
    slow = enabled[0]
    assert (slow["comparator"], slow["threshold"], slow["severity"], slow["task"], slow["source"]) == (
        ">=",
        5.0,
        "critical",
        "latency",
        "config",
    )
    assert slow["description"] == "p95 too slow" and slow["enabled"] is True and _aware_utc(slow["created_at"])


def test_alert_dedupe_resolve_acknowledge(engine: Engine) -> None:
    target_id, run_id = _new_run(engine)
    other_target, run2 = _new_run(engine, target="other")
    with session_scope(engine) as s:
        rule = alerts.upsert_rule(
            s, name="mem", kind="threshold", metric="rss_mb", comparator=">", threshold=8192, severity="critical"
        )
        first = alerts.fire_alert(s, rule_id=rule, run_id=run_id, target_id=target_id, value=9000, message="9000 MB")
        again = alerts.fire_alert(s, rule_id=rule, run_id=run2, target_id=target_id, value=9500, message="9500 MB")
        elsewhere = alerts.fire_alert(s, rule_id=rule, run_id=run2, target_id=other_target, value=9100, message="x")
        untargeted = alerts.fire_alert(s, rule_id=rule, run_id=None, target_id=None, value=1e4, message="host")
        assert alerts.fire_alert(s, rule_id=rule, run_id=None, target_id=None, value=2e4, message="host") == untargeted
    assert first == again and len({first, elsewhere, untargeted}) == 3
    with session_scope(engine) as s:
        firing = {a["id"]: a for a in alerts.list_alerts(s, state="firing")}
        assert set(firing) == {first, elsewhere, untargeted}
        deduped = firing[first]
        assert (deduped["value"], deduped["message"], deduped["run_id"]) == (9500.0, "9500 MB", run2)
        assert (deduped["rule"], deduped["severity"], deduped["target"]) == ("mem", "critical", "gemma-3-270m")
        assert firing[untargeted]["target"] is None and firing[untargeted]["value"] == 2e4
        assert _aware_utc(deduped["fired_at"]) and deduped["acknowledged_at"] is None

        alerts.acknowledge_alert(s, first)
        assert alerts.resolve_alert(s, rule_id=rule, target_id=target_id, value=100) == first
        assert alerts.resolve_alert(s, rule_id=rule, target_id=target_id, value=100) is None
        with pytest.raises(UnknownNameError):
            alerts.acknowledge_alert(s, 999_999)
        with pytest.raises(ValueError, match="state"):
            alerts.list_alerts(s, state="open")
    with session_scope(engine) as s:
        (resolved,) = alerts.list_alerts(s, state="resolved")
        assert resolved["id"] == first and resolved["value"] == 100.0
        assert _aware_utc(resolved["resolved_at"]) and _aware_utc(resolved["acknowledged_at"])
        # Firing again after a resolve opens a new alert; history is kept.
        refired = alerts.fire_alert(s, rule_id=rule, run_id=run2, target_id=target_id, value=9999, message="again")
        assert refired != first
        assert len(alerts.list_alerts(s)) == 4
        assert len(alerts.list_alerts(s, limit=2)) == 2


def test_bulk_insert_is_one_executemany(engine: Engine) -> None:
    _, run_id = _new_run(engine)
    rows = [
        {
            "run_id": run_id,
            "host": "h",
            "source": "psutil",
            "metric": "cpu",
            "unit": "%",
            "value": float(i),
            "ts": T0 + timedelta(milliseconds=i),
            "interval_s": 0.5,
        }
        for i in range(5000)
    ]
    inserts: list[bool] = []

    def spy(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if statement.startswith("INSERT INTO telemetry"):
            inserts.append(executemany)

    event.listen(engine, "before_cursor_execute", spy)
    try:
        with session_scope(engine) as s:
            assert telemetry.add_telemetry(s, rows) == 5000
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    assert inserts == [True]  # one DBAPI executemany, not 5000 round trips
    with session_scope(engine) as s:
        (row,) = telemetry.telemetry_summary(s, run_id)
    assert (row["n"], row["min"], row["max"]) == (5000, 0.0, 4999.0)


def test_merge_run_config_adds_keys_and_keeps_the_rest(engine: Engine) -> None:
    _, run_id = _new_run(engine)
    with session_scope(engine) as s:
        before = runs.run_summary(s, run_id)
        assert before is not None
        runs.merge_run_config(s, run_id, {"target": {"dtype": "bfloat16", "revision": "abc"}})
    with session_scope(engine) as s:
        after = runs.run_summary(s, run_id)
    assert after is not None
    assert after["config"]["target"] == {"dtype": "bfloat16", "revision": "abc"}
    assert {k: v for k, v in after["config"].items() if k != "target"} == before["config"]
    with pytest.raises(UnknownNameError), session_scope(engine) as s:
        runs.merge_run_config(s, 987654, {"x": 1})
