"""Regression rules after a run, against stored baselines and per-sample scores (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from alerts_support import FakeNotifier, make_run
from sqlalchemy.engine import Engine

from gemmawatch.alerts import RegressionRule, evaluate_run, save_rule
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import alerts as aq
from gemmawatch.storage.queries import baselines as bq

KEY = ("smoke_mc", "acc")
#: 20 items: the baseline gets 16 right.
GOOD = [1.0] * 16 + [0.0] * 4
#: 8 of the baseline's right answers turn wrong, none the other way: McNemar p = 2 * 0.5**8 = 0.0078.
BROKEN = [1.0] * 8 + [0.0] * 12
#: 2 answers turn wrong: a drop of 0.1 but McNemar p = 0.5.
SLIGHTLY = [1.0] * 14 + [0.0] * 6


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def rule(**kw: Any) -> RegressionRule:
    base: dict[str, Any] = {"name": "acc-drop", "kind": "regression", "task": "smoke_mc", "metric": "acc",
                            "max_drop": 0.05, "severity": "critical", "notify": ["json://127.0.0.1:9/x"]}  # fmt: skip
    return RegressionRule.model_validate({**base, **kw})


def run(engine: Engine, scores: list[float] | None, value: float | None = None, **kw: Any) -> int:
    v = value if value is not None else sum(scores or []) / len(scores or [1])
    return make_run(engine, metrics={KEY: v}, scores={"smoke_mc/acc": scores} if scores else None, **kw)


def evaluate(engine: Engine, run_id: int, r: RegressionRule | None = None) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        save_rule(s, r or rule())
        return evaluate_run(s, run_id, notifier=FakeNotifier())


def test_significant_drop_against_the_previous_run_fires(engine: Engine) -> None:
    base = run(engine, GOOD)
    make_run(engine, kind="load", metrics={KEY: 0.1})  # another kind: not a baseline
    make_run(engine, target="other", metrics={KEY: 0.1})  # another target: not a baseline
    make_run(engine, status="failed", metrics={KEY: 0.1})  # failed: not a baseline
    cur = run(engine, BROKEN)
    [t] = evaluate(engine, cur)
    assert (t["rule"], t["state"], t["severity"], t["value"]) == ("acc-drop", "firing", "critical", pytest.approx(0.4))
    msg = t["message"]
    assert f"vs run {base}" in msg and "McNemar exact p=0.00781 on 20 paired samples" in msg and "\n" not in msg
    assert t["notify"] is True


def test_a_drop_within_noise_does_not_fire_and_resolves(engine: Engine) -> None:
    run(engine, GOOD)
    assert evaluate(engine, run(engine, SLIGHTLY)) == []  # 0.1 > 0.05 but p = 0.5: no alert
    fired = evaluate(engine, run(engine, BROKEN))  # vs the 14/20 run: 6 lost, p = 0.031
    assert fired[0]["state"] == "firing"
    back = evaluate(engine, run(engine, BROKEN))  # same as the previous run: no drop
    assert back[0]["state"] == "resolved" and back[0]["alert_id"] == fired[0]["alert_id"]
    assert "within max_drop" in back[0]["message"]


def test_explicit_baselines_by_run_and_label(engine: Engine) -> None:
    labelled = run(engine, GOOD, label="release-1")
    run(engine, BROKEN)  # the previous run is as bad as the current one
    cur = run(engine, BROKEN)
    assert evaluate(engine, cur) == []
    by_run = evaluate(engine, cur, rule(name="vs-run", baseline=f"run:{labelled}"))
    assert [t["rule"] for t in by_run if t["state"] == "firing"] == ["vs-run"]
    by_label = evaluate(engine, cur, rule(name="vs-label", baseline="label:release-1"))
    assert "vs-label" in [t["rule"] for t in by_label if t["state"] == "firing"]
    with session_scope(engine) as s:
        assert bq.baseline_run(s, cur, mode="label", ref="release-1", task="smoke_mc", metric="acc") == labelled
        assert bq.baseline_run(s, cur, mode="label", ref="nope", task="smoke_mc", metric="acc") is None
        assert bq.baseline_run(s, cur, mode="run", ref=cur, task="smoke_mc", metric="acc") is None


def test_label_baseline_prefers_the_same_target(engine: Engine) -> None:
    mine = run(engine, GOOD, label="gold")
    run(engine, GOOD, label="gold", target="other")  # newer, but another target
    cur = run(engine, BROKEN)
    with session_scope(engine) as s:
        assert bq.baseline_run(s, cur, mode="label", ref="gold", task="smoke_mc", metric="acc") == mine


def test_without_samples_the_stored_intervals_decide_and_the_message_says_so(engine: Engine) -> None:
    run(engine, None, value=0.80, ci={KEY: (0.75, 0.85)})
    tight = run(engine, None, value=0.60, ci={KEY: (0.55, 0.65)})
    [t] = evaluate(engine, tight)
    assert t["state"] == "firing"
    assert "no per-sample scores: z-test on stored standard errors" in t["message"] and "(unpaired)" in t["message"]
    wide = run(engine, None, value=0.50, ci={KEY: (0.0, 1.0)})  # vs 0.60 with a huge interval: not significant
    [r] = evaluate(engine, wide)
    assert r["state"] == "resolved" and "not significant" in r["message"]


def test_no_baseline_or_no_metric_is_no_data(engine: Engine) -> None:
    first = run(engine, GOOD)
    assert evaluate(engine, first) == []  # nothing before it
    other_task = make_run(engine, metrics={("latency", "e2e_s_p95"): 1.0})
    assert evaluate(engine, other_task) == []
    with session_scope(engine) as s:
        assert aq.list_alerts(s) == []


def test_scores_under_a_filter_fall_back_to_the_plain_name(engine: Engine) -> None:
    a = make_run(engine, scores={"gen/exact_match": [1.0, 0.0]})
    with session_scope(engine) as s:
        assert bq.sample_scores(s, a, "gen", "exact_match,strict-match") == {0: 1.0, 1: 0.0}
        assert bq.sample_scores(s, a, "gen", "exact_match") == {0: 1.0, 1: 0.0}
        assert bq.sample_scores(s, a, "gen", "other") == {}
