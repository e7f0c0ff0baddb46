"""Per-step results: windows per step, telemetry joined by time, the knee explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.profiles import make_profile, rate_step
from gemmawatch.collectors.load.results import describe_telemetry, headline, saturation, summarize_steps
from gemmawatch.collectors.load.runner import Budget, StepRecord

WALL = datetime(2026, 1, 1, tzinfo=UTC)


def events_for(step: int, start: float, n: int, gap: float, e2e: float) -> list[RequestEvent]:
    out = []
    for k in range(n):
        sent = start + k * gap
        first = sent + e2e / 4
        out.append(
            RequestEvent(seq=k, step=step, sent_s=sent, first_chunk_s=first, chunk_s=[first, sent + e2e],
                         n_chunks=2, end_s=sent + e2e, input_tokens=8, output_tokens=2, token_source="server")
        )  # fmt: skip
    return out


def tele(metric: str, value: float, at_s: float) -> dict:
    return {"metric": metric, "value": value, "ts": WALL + timedelta(seconds=at_s), "labels": {}}


def test_steps_get_their_own_window_and_telemetry():
    sweep = make_profile("sweep", steps=3, concurrency=4)
    records = [
        StepRecord(0, make_profile("synchronous"), 0.0, 10.0),
        StepRecord(1, make_profile("concurrent", concurrency=4), 10.0, 20.0),
        StepRecord(2, rate_step(sweep, 3.0), 20.0, 30.0),
    ]
    events = events_for(0, 0.0, 10, 1.0, 0.5) + events_for(1, 10.0, 40, 0.25, 1.0) + events_for(2, 20.0, 40, 0.25, 4.0)
    rows = [tele("cpu.percent", 30.0, 5), tele("cpu.percent", 95.0, 15), tele("cpu.percent", 99.0, 25),
            tele("vllm:num_requests_waiting", 6.0, 25)]  # fmt: skip
    results = summarize_steps(events, records, Budget(max_requests=40), slo=None, sweep=True, wall_start=WALL,
                              telemetry=rows)  # fmt: skip
    assert [r.telemetry.get("host_cpu_percent") for r in results] == [30.0, 95.0, 99.0]
    assert results[2].telemetry["queue_depth"] == 6.0
    assert results[0].window.start_s == 0.0 and results[1].window.start_s == 10.0
    assert {row["filter"] for row in results[1].rows} == {"step01"}
    assert headline(results).step == 1  # the highest request throughput
    as_json = results[2].as_dict()
    assert as_json["offered_rate"] == 3.0 and as_json["concurrency"] is None and as_json["profile"] == "constant@3/s"


def test_describe_telemetry_only_mentions_what_was_measured():
    assert describe_telemetry({"host_cpu_percent": 97.4, "queue_depth": 3.25}) == "host CPU 97%, 3.2 requests queued"
    assert describe_telemetry({}) == ""


def test_knee_reason_names_the_telemetry_past_the_knee():
    sweep = make_profile("sweep", steps=4, concurrency=8)
    records = [StepRecord(k, rate_step(sweep, r), k * 10.0, k * 10.0 + 10) for k, r in enumerate([1.0, 2.0, 4.0, 8.0])]
    # Throughput follows the offered rate up to 2/s, then stays at 2/s while latency climbs.
    events = (events_for(0, 0.0, 10, 1.0, 0.5) + events_for(1, 10.0, 20, 0.5, 0.5)
              + events_for(2, 20.0, 20, 0.5, 3.0) + events_for(3, 30.0, 20, 0.5, 9.0))  # fmt: skip
    rows = [tele("cpu.percent", 99.0, 25), tele("vllm:num_requests_waiting", 4.0, 25)]
    results = summarize_steps(events, records, Budget(max_requests=20), slo=None, sweep=True, wall_start=WALL,
                              telemetry=rows)  # fmt: skip
    knee = saturation(results)
    assert knee is not None and knee.step == 1
    assert knee.reason.endswith("During step 2: host CPU 99%, 4.0 requests queued.")
