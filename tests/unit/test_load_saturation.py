"""Knee detection and sweep rates on hand-made sweep steps."""

from __future__ import annotations

import json
import random

import pytest

from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.metrics import assign_phases, summarize
from gemmawatch.collectors.load.saturation import Knee, StepPoint, find_knee, sweep_rates
from gemmawatch.errors import ConfigError


def _rate(step: int, offered: float, thr: float, e2e: float | None, ttft: float | None = None) -> StepPoint:
    return StepPoint(
        step=step, offered=offered, concurrency=None, request_throughput=thr, e2e_p50_s=e2e, ttft_p50_s=ttft
    )


def _users(step: int, users: int, thr: float, e2e: float | None, queue: float | None = None) -> StepPoint:
    return StepPoint(
        step=step, offered=None, concurrency=users, request_throughput=thr, e2e_p50_s=e2e, queue_depth=queue
    )


def _open_sweep() -> list[StepPoint]:
    # Offered 1..5 req/s; the server tops out near 3.1 req/s and latency climbs from step 3.
    return [
        _rate(0, 1.0, 1.0, 1.0),
        _rate(1, 2.0, 2.0, 1.02),
        _rate(2, 3.0, 2.95, 1.1),
        _rate(3, 4.0, 3.1, 2.0),
        _rate(4, 5.0, 3.12, 4.0),
    ]


def test_open_loop_knee_is_the_last_step_that_kept_up() -> None:
    knee = find_knee(_open_sweep())
    assert isinstance(knee, Knee)
    assert knee.step == 2
    assert knee.max_throughput == 3.12
    assert [p.step for p in knee.points] == [0, 1, 2, 3, 4]
    # step 3 achieved 3.1 of 4 offered (78 % < 90 %) while p50 E2E rose 1.1 s -> 2.0 s (82 %)
    assert knee.reason == (
        "Throughput stopped rising after step 2 (2.95 req/s): step 3 achieved 3.1 req/s of 4 offered (78%), "
        "while p50 E2E rose 82% (1.1s -> 2s)."
    )
    assert "\n" not in knee.reason


def test_step_order_does_not_matter() -> None:
    points = _open_sweep()
    random.Random(3).shuffle(points)
    knee = find_knee(points)
    assert knee is not None and knee.step == 2


def test_small_gain_for_the_added_load_is_flat_even_when_rates_keep_up() -> None:
    # Offered 10 -> 20 req/s but the step reaches only 10.5 (+0.5 < 10 % of +10): flat; TTFT rises 50 %.
    points = [_rate(0, 5.0, 5.0, None, 0.1), _rate(1, 10.0, 10.0, None, 0.1), _rate(2, 20.0, 10.5, None, 0.15)]
    knee = find_knee(points, min_achieved=0.0)
    assert knee is not None and knee.step == 1
    assert "step 2 gained +0.5 req/s (10 -> 10.5) for 10 req/s more load" in knee.reason
    assert "p50 TTFT rose 50%" in knee.reason


def test_closed_loop_knee_scales_expected_gain_with_users() -> None:
    points = [_users(0, 1, 1.0, 1.0), _users(1, 2, 1.95, 1.03), _users(2, 4, 2.1, 1.9), _users(3, 8, 2.15, 3.7)]
    knee = find_knee(points)
    # 2 -> 4 users should add ~1.95 req/s on an unsaturated server; it added 0.15 (< 10 %).
    assert knee is not None and knee.step == 1
    assert "step 2 gained +0.15 req/s (1.95 -> 2.1) for 1.95 req/s more load" in knee.reason
    assert knee.max_throughput == 2.15


def test_closed_loop_sweep_is_ordered_by_users_not_throughput() -> None:
    # Throughput falls at 8 users (overload); ordering by throughput would hide that step.
    points = [_users(3, 8, 1.8, 5.0), _users(0, 1, 1.0, 1.0), _users(2, 4, 2.0, 1.2), _users(1, 2, 1.9, 1.0)]
    knee = find_knee(points)
    assert knee is not None and knee.step == 2
    assert [p.concurrency for p in knee.points] == [1, 2, 4, 8]


def test_queue_depth_alone_can_show_queueing() -> None:
    points = [_users(0, 1, 1.0, None, 0.5), _users(1, 2, 2.0, None, 0.5), _users(2, 4, 2.05, None, 6.0)]
    knee = find_knee(points)
    assert knee is not None and knee.step == 1 and "queue depth rose" in knee.reason
    # From an empty queue, under one waiting request is noise; two waiting requests is not.
    noise = [_users(0, 1, 1.0, None, 0.0), _users(1, 2, 2.0, None, 0.0), _users(2, 4, 2.05, None, 0.4)]
    assert find_knee(noise) is None
    real = [_users(0, 1, 1.0, None, 0.0), _users(1, 2, 2.0, None, 0.0), _users(2, 4, 2.05, None, 2.0)]
    knee = find_knee(real)
    assert knee is not None and "queue depth rose from 0" in knee.reason


def test_guidellm_style_mixed_sweep() -> None:
    sync = StepPoint(step=0, offered=None, concurrency=1, request_throughput=1.0, e2e_p50_s=1.0)
    peak = StepPoint(step=1, offered=None, concurrency=64, request_throughput=3.2, e2e_p50_s=9.0)
    rates = sweep_rates(1.0, 3.2, 6)
    assert rates == pytest.approx([1.44, 1.88, 2.32, 2.76])
    achieved = [(1.44, 1.05), (1.88, 1.1), (2.3, 1.3), (2.4, 2.6)]
    points = [sync, peak] + [
        _rate(2 + i, r, thr, e2e) for i, (r, (thr, e2e)) in enumerate(zip(rates, achieved, strict=True))
    ]
    knee = find_knee(points)
    assert knee is not None and knee.step == 4
    assert [p.step for p in knee.points] == [0, 2, 3, 4, 5, 1]
    assert knee.max_throughput == 3.2


def test_no_knee_when_throughput_keeps_rising_or_latency_is_flat() -> None:
    rising = [_rate(i, r, r, 1.0 + i) for i, r in enumerate([1.0, 2.0, 3.0, 4.0])]  # latency up, thr keeps up
    assert find_knee(rising) is None
    flat_latency = [_rate(0, 1.0, 1.0, 1.0), _rate(1, 2.0, 2.0, 1.0), _rate(2, 4.0, 2.1, 1.1)]  # +10 % only
    assert find_knee(flat_latency) is None
    assert find_knee(flat_latency, min_rise=0.05) is not None


def test_fewer_than_three_points_is_no_knee() -> None:
    assert find_knee([]) is None
    assert find_knee(_open_sweep()[2:4]) is None


def test_missing_latency_is_not_evidence() -> None:
    points = [_rate(0, 1.0, 1.0, None), _rate(1, 2.0, 2.0, None), _rate(2, 4.0, 2.0, None)]
    assert find_knee(points) is None


def test_step_point_from_summary() -> None:
    events = [
        RequestEvent(
            seq=0,
            step=3,
            sent_s=0.0,
            first_chunk_s=0.25,
            chunk_s=[0.25, 0.5],
            n_chunks=2,
            end_s=0.5,
            input_tokens=3,
            output_tokens=2,
        )
    ]
    summary = summarize(events, window=assign_phases(events))
    point = StepPoint.from_summary(3, summary, offered=2.0, queue_depth=1.5, telemetry={"gpu_util": 0.9})
    assert (point.step, point.offered, point.concurrency) == (3, 2.0, None)
    assert (point.request_throughput, point.output_throughput) == (2.0, 4.0)
    assert (point.ttft_p50_s, point.e2e_p50_s, point.e2e_p99_s) == (0.25, 0.5, 0.5)
    assert point.queue_depth == 1.5 and point.telemetry == {"gpu_util": 0.9}
    empty = StepPoint.from_summary(0, summarize([], window=assign_phases([])), concurrency=4)
    assert empty.request_throughput == 0.0 and empty.e2e_p50_s is None


def test_sweep_rates_are_evenly_spaced_strictly_between() -> None:
    assert sweep_rates(1.0, 3.0, 5) == pytest.approx([1.5, 2.0, 2.5])
    assert sweep_rates(1.0, 3.0, 3) == pytest.approx([2.0])
    assert sweep_rates(1.0, 3.0, 2) == []
    rates = sweep_rates(0.5, 7.25, 10)
    assert len(rates) == 8 and all(0.5 < r < 7.25 for r in rates)
    # No scaling from concurrency: the rates reach past the measured maximum, up to 1.5x, to show the overload.
    assert sweep_rates(3.0, 3.0, 5) == pytest.approx([3.375, 3.75, 4.125])
    assert sweep_rates(3.0, 2.0, 3) == pytest.approx([3.25])
    assert sweep_rates(2.0, 2.4, 3) == pytest.approx([2.2])  # scaled by 20%: GuideLLM's range
    assert sweep_rates(0.0, 0.0, 5) == []


def test_sweep_rates_validation() -> None:
    with pytest.raises(ConfigError, match="at least 2 steps"):
        sweep_rates(1.0, 3.0, 1)
    with pytest.raises(ValueError, match="synchronous"):
        sweep_rates(float("nan"), 3.0, 4)


def test_knee_as_dict_is_json_ready() -> None:
    knee = find_knee(_open_sweep())
    assert knee is not None
    data = json.loads(json.dumps(knee.as_dict()))
    assert data["step"] == 2 and data["max_throughput"] == 3.12 and data["reason"] == knee.reason
    assert [p["offered"] for p in data["points"]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert data["points"][0]["telemetry"] == {}
