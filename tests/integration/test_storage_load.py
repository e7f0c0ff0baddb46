"""Load-test storage (``load_requests`` and per-step metrics) on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError

from gemmawatch.collectors.load.events import PHASES, RequestEvent
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.models import LOAD_PHASES, LoadRequest
from gemmawatch.storage.queries import load, metrics, runs, targets


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def _new_run(engine: Engine) -> int:
    with session_scope(engine) as s:
        target_id = targets.upsert_target(s, name="served", backend="openai", model_id="google/gemma-3-270m-it")
        return runs.create_run(
            s, kind="load", target_id=target_id, config={"profile": "poisson"}, host="box", versions={}
        )


def _events() -> list[RequestEvent]:
    """Every shape a request can take: streamed, counted-only, failed mid-stream, never answered."""
    return [
        RequestEvent(
            seq=0,
            step=0,
            sent_s=0.1 + 0.2,  # not exactly 0.3: must come back bit for bit
            scheduled_s=0.3,
            first_chunk_s=0.41234567890123456,
            chunk_s=[0.41234567890123456, 0.5, 1 / 3 + 0.25, 1e-9 + 0.6, 1234567.0000001],
            n_chunks=5,
            end_s=1234567.25,
            input_tokens=128,
            output_tokens=5,
            token_source="server",
            status=200,
            phase="warmup",
        ),
        RequestEvent(
            seq=1,
            step=0,
            sent_s=0.5,
            first_chunk_s=0.75,
            chunk_s=[],  # per-chunk times not kept; the count still is
            n_chunks=12,
            end_s=2.0,
            input_tokens=64,
            output_tokens=12,
            token_source="tokenizer",
        ),
        RequestEvent(
            seq=2,
            step=0,
            sent_s=0.9,
            scheduled_s=0.875,
            first_chunk_s=1.0,
            chunk_s=[1.0, 1.1],
            n_chunks=2,
            end_s=1.5,
            output_tokens=2,
            status=200,
            error="stream closed after 2 chunks",
            error_class="stream_cut",
            phase="cooldown",
        ),
        RequestEvent(
            seq=3, step=0, sent_s=1.25, status=503, end_s=1.26, error="HTTP 503: busy", error_class="http_503"
        ),
        RequestEvent(seq=4, step=0, sent_s=1.5, error="timed out after 30 s", error_class="timeout"),
    ]


def test_phases_match_the_collector() -> None:
    assert LOAD_PHASES == PHASES


def test_round_trip_keeps_every_field(engine: Engine) -> None:
    run_id = _new_run(engine)
    events = _events()
    with session_scope(engine) as s:
        # A generator is fine: the rows are materialised once.
        assert load.add_load_requests(s, run_id, (e for e in events)) == len(events)
        assert load.add_load_requests(s, run_id, []) == 0
    with session_scope(engine) as s:
        stored = load.load_requests(s, run_id)
    assert stored == events
    for got, want in zip(stored, events, strict=True):
        for name in ("sent_s", "scheduled_s", "first_chunk_s", "end_s"):
            assert repr(getattr(got, name)) == repr(getattr(want, name)), name
        assert [repr(t) for t in got.chunk_s] == [repr(t) for t in want.chunk_s]
    assert [e.ok for e in stored] == [True, True, False, False, False]
    assert stored[0].ttft_s == events[0].ttft_s and stored[0].itl_s == events[0].itl_s
    assert stored[3].lag_s is None and stored[2].lag_s == pytest.approx(0.025)


def test_requests_come_back_ordered_by_step_then_seq(engine: Engine) -> None:
    run_id = _new_run(engine)
    other = _new_run(engine)
    events = [RequestEvent(seq=seq, step=step, sent_s=step * 10 + seq * 0.01) for step in range(3) for seq in range(7)]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    with session_scope(engine) as s:
        load.add_load_requests(s, run_id, shuffled)
        load.add_load_requests(s, other, [RequestEvent(seq=0, step=1, sent_s=99.0)])
    with session_scope(engine) as s:
        assert load.load_requests(s, run_id) == events
        assert load.load_requests(s, run_id, step=1) == events[7:14]
        assert load.load_requests(s, run_id, step=0) == events[:7]
        assert load.load_requests(s, run_id, step=5) == []
        assert load.load_requests(s, other) == [RequestEvent(seq=0, step=1, sent_s=99.0)]
        assert load.load_requests(s, run_id + 1000) == []
        assert runs.run_summary(s, run_id)["load_requests_count"] == 21  # type: ignore[index]


def test_non_finite_times(engine: Engine) -> None:
    run_id = _new_run(engine)
    nan, inf = float("nan"), float("inf")
    with session_scope(engine) as s:
        # Optional times that are not numbers are unknown: stored as NULL.
        load.add_load_requests(s, run_id, [RequestEvent(seq=0, step=0, sent_s=1.0, scheduled_s=nan, end_s=inf)])
        with pytest.raises(ValueError, match="seq 1: sent_s is nan"):
            load.add_load_requests(s, run_id, [RequestEvent(seq=1, step=0, sent_s=nan)])
        with pytest.raises(ValueError, match="seq 2: chunk_s"):
            load.add_load_requests(s, run_id, [RequestEvent(seq=2, step=0, sent_s=1.0, chunk_s=[1.5, inf])])
    with session_scope(engine) as s:
        (stored,) = load.load_requests(s, run_id)
    assert stored == RequestEvent(seq=0, step=0, sent_s=1.0)


def test_unknown_phase_is_rejected_by_the_database(engine: Engine) -> None:
    run_id = _new_run(engine)
    bad = replace(RequestEvent(seq=0, step=0, sent_s=0.0), phase="ramp")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        load.add_load_requests(s, run_id, [bad])


def test_bulk_insert_is_one_executemany(engine: Engine) -> None:
    run_id = _new_run(engine)
    events = [
        RequestEvent(seq=i, step=0, sent_s=i * 0.001, first_chunk_s=i * 0.001 + 0.05, chunk_s=[i * 0.001 + 0.05])
        for i in range(5000)
    ]
    inserts: list[bool] = []

    def spy(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if statement.startswith("INSERT INTO load_requests"):
            inserts.append(executemany)

    event.listen(engine, "before_cursor_execute", spy)
    try:
        with session_scope(engine) as s:
            assert load.add_load_requests(s, run_id, events) == 5000
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    assert inserts == [True]  # one DBAPI executemany, not 5000 round trips
    with session_scope(engine) as s:
        assert load.load_requests(s, run_id) == events


def _load_metric(metric: str, value: float, filter: str, details: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "task": "load",
        "metric": metric,
        "value": value,
        "n": 100,
        "filter": filter,
        "details": details,
        "producer": "gemmawatch.load",
        "producer_version": "1",
        **extra,
    }


def test_load_steps_groups_the_metrics_of_each_step(engine: Engine) -> None:
    sweep = _new_run(engine)
    single = _new_run(engine)
    step1 = {"step": 1, "profile": "poisson", "offered": 4.0}
    step0 = {"step": 0, "profile": "poisson", "offered": 2.0}
    with session_scope(engine) as s:
        # Stored out of order: load_steps sorts by step.
        metrics.add_metrics(
            s,
            sweep,
            [
                _load_metric("request_throughput", 3.5, "step01", step1, ci_low=3.1, ci_high=3.9),
                _load_metric("ttft_p99_s", 0.8, "step01", step1, ci_low=0.7, ci_high=0.95),
                _load_metric("request_throughput", 1.9, "step00", step0, ci_low=1.6, ci_high=2.2),
                _load_metric("goodput", 1.8, "step00", step0),
                {**_load_metric("acc", 0.5, "step00", step0), "task": "other"},
            ],
        )
        metrics.add_metrics(s, single, [_load_metric("request_throughput", 2.5, "none", {"profile": "constant"})])
    with session_scope(engine) as s:
        steps = load.load_steps(s, sweep)
        (only,) = load.load_steps(s, single)
        assert load.load_steps(s, sweep + 1000) == []
    assert [(st["step"], st["filter"]) for st in steps] == [(0, "step00"), (1, "step01")]
    assert steps[0]["details"] == step0 and steps[1]["details"] == step1
    assert steps[0]["metrics"] == {
        "request_throughput": {"value": 1.9, "ci_low": 1.6, "ci_high": 2.2, "n": 100},
        "goodput": {"value": 1.8, "ci_low": None, "ci_high": None, "n": 100},
    }
    assert set(steps[1]["metrics"]) == {"request_throughput", "ttft_p99_s"}
    assert steps[1]["metrics"]["ttft_p99_s"]["ci_high"] == 0.95
    assert (only["step"], only["filter"], only["details"]) == (0, "none", {"profile": "constant"})
    assert only["metrics"]["request_throughput"]["value"] == 2.5


def test_deleting_a_run_deletes_its_requests(engine: Engine) -> None:
    run_id = _new_run(engine)
    kept = _new_run(engine)
    with session_scope(engine) as s:
        load.add_load_requests(s, run_id, _events())
        load.add_load_requests(s, kept, _events()[:2])
    with session_scope(engine) as s:
        assert runs.delete_run(s, run_id) is True
    with session_scope(engine) as s:
        counts = {
            rid: s.scalar(select(func.count()).select_from(LoadRequest).where(LoadRequest.run_id == rid))
            for rid in (run_id, kept)
        }
        assert load.load_requests(s, kept) == _events()[:2]
        assert runs.run_summary(s, kept)["load_requests_count"] == 2  # type: ignore[index]
    assert counts == {run_id: 0, kept: 2}


def test_request_timings_match_the_event_properties(engine: Engine) -> None:
    run_id, other = _new_run(engine), _new_run(engine)
    events = _events()
    with session_scope(engine) as s:
        load.add_load_requests(s, run_id, events)
        load.add_load_requests(s, other, events[:1])  # another run's rows stay out
    with session_scope(engine) as s:
        rows = load.request_timings(s, run_id)
        assert load.request_timings(s, run_id + 1000) == []
    assert [(r["step"], r["seq"], r["phase"]) for r in rows] == [(e.step, e.seq, e.phase) for e in events]
    assert [r["ok"] for r in rows] == [e.ok for e in events]
    assert [r["error_class"] for r in rows] == [e.error_class for e in events]
    assert [r["output_tokens"] for r in rows] == [e.output_tokens for e in events]
    # Differences are computed by the database with the same IEEE doubles: bit for bit.
    assert [r["ttft_s"] for r in rows] == [e.ttft_s for e in events]
    assert [r["e2e_s"] for r in rows] == [e.e2e_s for e in events]
    assert [r["tpot_s"] for r in rows] == [e.tpot_s for e in events]
    assert rows[3]["ttft_s"] is None and rows[4]["e2e_s"] is None and rows[4]["tpot_s"] is None


def test_request_timings_are_thinned_evenly_in_sql(engine: Engine) -> None:
    run_id = _new_run(engine)
    events = [
        RequestEvent(seq=seq, step=step, sent_s=seq * 0.01, first_chunk_s=seq * 0.01 + 0.05, end_s=seq * 0.01 + 0.2,
                     output_tokens=3)
        for step in range(2) for seq in range(1000)
    ]  # fmt: skip
    statements: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    with session_scope(engine) as s:
        load.add_load_requests(s, run_id, events)
    event.listen(engine, "before_cursor_execute", spy)
    try:
        with session_scope(engine) as s:
            thinned = load.request_timings(s, run_id, limit=500)
            everything = load.request_timings(s, run_id, limit=2000)
            with pytest.raises(ValueError, match="limit"):
                load.request_timings(s, run_id, limit=0)
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    # 2000 requests, limit 500: every 4th of each step, chosen by the database (a modulo in the WHERE clause).
    assert len(thinned) == 500
    assert [(r["step"], r["seq"]) for r in thinned] == [(st, seq) for st in range(2) for seq in range(0, 1000, 4)]
    assert any("%" in sql for sql in statements)
    assert len(everything) == 2000
    assert all(r["ttft_s"] == pytest.approx(0.05) and r["tpot_s"] == pytest.approx(0.075) for r in thinned)


def test_load_runs_lists_only_load_runs_with_their_profile(engine: Engine) -> None:
    with session_scope(engine) as s:
        target_id = targets.upsert_target(s, name="served", backend="openai", model_id="google/gemma-3-270m-it")
        sweep = runs.create_run(
            s, kind="load", target_id=target_id, host="box", versions={}, label="bf16",
            config={"profile": {"kind": "sweep", "concurrency": 8, "rate": None, "burstiness": 1.0, "steps": 5,
                                "max_inflight": 1024}, "steps": [{"step": 0}]},
        )  # fmt: skip
        runs.finish_run(s, sweep, status="completed")
        runs.create_run(s, kind="eval", target_id=target_id, host="box", versions={}, config={})
        poisson = runs.create_run(
            s, kind="load", target_id=None, host="box", versions={},
            config={"profile": {"kind": "poisson", "rate": 2.5, "burstiness": 0.5}},
        )  # fmt: skip
        bare = runs.create_run(s, kind="load", target_id=target_id, host="box", versions={}, config={})
    with session_scope(engine) as s:
        listed = load.load_runs(s)
        assert [r["id"] for r in load.load_runs(s, limit=1)] == [bare]
    assert [r["id"] for r in listed] == [bare, poisson, sweep]
    by_id = {r["id"]: r for r in listed}
    assert by_id[sweep]["profile"] == "sweep@5" and by_id[sweep]["label"] == "bf16"
    assert by_id[sweep]["target"] == "served" and by_id[sweep]["status"] == "completed"
    assert by_id[sweep]["started_at"] is not None and by_id[sweep]["finished_at"] is not None
    assert by_id[poisson]["profile"] == "poisson@2.5/s,b=0.5" and by_id[poisson]["target"] is None
    assert by_id[bare]["profile"] is None and by_id[bare]["status"] == "running"
