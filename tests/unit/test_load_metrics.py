"""Load-test summary arithmetic on hand-timed RequestEvents (vLLM benchmark_serving definitions)."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

import gemmawatch
from gemmawatch.collectors.load import metrics as m
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.metrics import (
    LoadSummary,
    Slo,
    Window,
    assign_phases,
    metric_rows,
    parse_slo,
    poisson_rate_interval,
    summarize,
)
from gemmawatch.errors import ConfigError
from gemmawatch.evals import stats


def _ok(seq: int, sent: float, chunks: list[float], end: float, inp: int | None, out: int | None) -> RequestEvent:
    first = chunks[0] if chunks else None
    return RequestEvent(
        seq=seq,
        step=0,
        sent_s=sent,
        first_chunk_s=first,
        chunk_s=list(chunks),
        n_chunks=len(chunks),
        end_s=end,
        input_tokens=inp,
        output_tokens=out,
        token_source="server",
        status=200,
    )


def _failed(seq: int, sent: float, end: float | None, chunks: list[float] | None = None) -> RequestEvent:
    chunks = chunks or []
    return RequestEvent(
        seq=seq,
        step=0,
        sent_s=sent,
        first_chunk_s=chunks[0] if chunks else None,
        chunk_s=chunks,
        n_chunks=len(chunks),
        end_s=end,
        input_tokens=9,
        error="timed out",
        error_class="timeout",
    )


def _four() -> list[RequestEvent]:
    """Three successes and one failure; every figure below is worked out by hand.

    =====  ====  ======  =====  =====  ======  =========  ===========
    seq    sent  TTFT    E2E    out    TPOT    ITL        input
    =====  ====  ======  =====  =====  ======  =========  ===========
    0      0.0   0.25    0.5    3      0.125   .125 .125  10
    1      0.5   0.5     1.0    5      0.125   4 x .125   20
    2      1.0   0.125   0.25   1      --      --         5
    3      1.5   failed at 2.0 (first chunk 1.75, never counted)
    =====  ====  ======  =====  =====  ======  =========  ===========
    """
    return [
        _ok(0, 0.0, [0.25, 0.375, 0.5], 0.5, 10, 3),
        _ok(1, 0.5, [1.0, 1.125, 1.25, 1.375, 1.5], 1.5, 20, 5),
        _ok(2, 1.0, [1.125], 1.25, 5, 1),
        _failed(3, 1.5, 2.0, [1.75]),
    ]


def _summary(events: list[RequestEvent], slo: Slo | None = None, **window: float) -> LoadSummary:
    return summarize(events, window=assign_phases(events, **window), slo=slo)


# --- SLO parsing -------------------------------------------------------------------------------


def test_parse_slo_units_and_bare_seconds() -> None:
    assert parse_slo("ttft=500ms,tpot=50ms,e2e=5s") == Slo(ttft_s=0.5, tpot_s=0.05, e2e_s=5.0)
    assert parse_slo(" TTFT = 1.5 , e2el=250ms ") == Slo(ttft_s=1.5, e2e_s=0.25)
    assert parse_slo("tpot=.02s") == Slo(tpot_s=0.02)
    assert parse_slo("e2e=2").as_dict() == {"e2e_s": 2.0}


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("ttft=fast", "ttft=fast"),
        ("ttft=500ms,speed=1s", "speed=1s"),
        ("ttft", "ttft"),
        ("ttft=5min", "ttft=5min"),
        ("ttft=-1s", "ttft=-1s"),
        ("ttft=0ms", "ttft=0ms"),
        ("ttft=1s,ttft=2s", "ttft=2s"),
        ("ttft=1s,", ""),
        ("", ""),
    ],
)
def test_parse_slo_errors_name_the_part_and_the_format(text: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_slo(text)
    msg = str(info.value)
    assert msg == f"Invalid --slo {bad!r}: expected NAME=DURATION (ttft, tpot, e2e; e.g. ttft=500ms,tpot=50ms,e2e=5s)"
    assert "\n" not in msg


# --- measurement window ------------------------------------------------------------------------


def test_window_without_margins_is_first_send_to_last_completion() -> None:
    events = _four()
    window = assign_phases(events, warmup_s=0.0, cooldown_s=0.0)
    assert window == Window(0.0, 2.0)
    assert window.duration == 2.0
    assert [e.phase for e in events] == ["measure"] * 4


def test_warmup_and_cooldown_assign_phases_by_completion_time() -> None:
    events = [*_four(), _failed(4, 0.125, None)]  # never ended: placed at its send time
    window = assign_phases(events, warmup_s=0.6, cooldown_s=0.25)
    assert window == Window(0.6, 1.75)
    assert window.duration == pytest.approx(1.15)
    # ends: 0.5 warmup, 1.5 measure, 1.25 measure, 2.0 cooldown, (sent) 0.125 warmup
    assert [e.phase for e in events] == ["warmup", "measure", "measure", "cooldown", "warmup"]
    summary = summarize(events, window=window)
    assert (summary.completed, summary.failed) == (2, 0)
    assert summary.request_throughput == pytest.approx(2 / 1.15)


def test_window_bounds_are_inclusive() -> None:
    events = _four()
    window = assign_phases(events, warmup_s=0.5, cooldown_s=0.5)  # [0.5, 1.5]: ends 0.5 and 1.5 count
    assert window == Window(0.5, 1.5)
    assert [e.phase for e in events] == ["measure", "measure", "measure", "cooldown"]


def test_window_starts_at_the_earliest_scheduled_time_of_the_step() -> None:
    events = [_ok(0, 10.25, [10.5], 11.0, 1, 1), _ok(1, 10.5, [10.75], 12.0, 1, 1)]
    events[0].scheduled_s = 10.0
    assert assign_phases(events, warmup_s=0.5) == Window(10.5, 12.0)
    assert [e.phase for e in events] == ["measure", "measure"]
    assert assign_phases(events, start_s=9.0) == Window(9.0, 12.0)


def test_margins_longer_than_the_run_leave_an_empty_window() -> None:
    events = _four()
    window = assign_phases(events, warmup_s=1.5, cooldown_s=1.0)
    assert window.duration == 0.0
    assert all(e.phase != "measure" for e in events)
    summary = summarize(events, window=window)
    assert summary.completed == 0 and summary.request_throughput is None and summary.error_rate is None


def test_negative_margin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--warmup"):
        assign_phases(_four(), warmup_s=-1.0)


# --- summary -----------------------------------------------------------------------------------


def test_summary_matches_hand_computed_vllm_figures() -> None:
    s = _summary(_four())
    assert (s.completed, s.failed, s.duration_s) == (3, 1, 2.0)
    assert s.request_throughput == 1.5
    assert (s.input_tokens, s.output_tokens) == (35, 9)
    assert s.output_throughput == 4.5
    assert s.total_token_throughput == 22.0
    ttft, e2e, tpot, itl = [0.25, 0.5, 0.125], [0.5, 1.0, 0.25], [0.125, 0.125], [0.125] * 6
    for name, values in (("ttft", ttft), ("e2e", e2e), ("tpot", tpot), ("itl", itl)):
        assert getattr(s, f"{name}_mean_s") == pytest.approx(np.mean(values))
        for q in (50, 90, 95, 99):
            assert getattr(s, f"{name}_p{q}_s") == pytest.approx(np.percentile(values, q)), (name, q)
    assert s.ttft_p50_s == 0.25 and s.ttft_p90_s == pytest.approx(0.45)  # linear interpolation
    assert s.e2e_mean_s == pytest.approx(1.75 / 3)
    assert s.error_rate == 0.25
    assert s.goodput is None and s.goodput_fraction is None  # no SLO given
    assert s.lag_p99_s is None  # closed loop: nothing was scheduled


def test_itl_pools_gaps_across_requests() -> None:
    events = [_ok(0, 0.0, [0.5, 0.625], 0.625, 1, 2), _ok(1, 0.0, [0.5, 1.0, 1.5, 2.0], 2.0, 1, 4)]
    s = _summary(events)
    pooled = [0.125, 0.5, 0.5, 0.5]
    assert s.itl_mean_s == pytest.approx(np.mean(pooled))  # 0.40625, not the mean of request means (0.3125)
    assert s.itl_p50_s == 0.5


@pytest.mark.parametrize(
    ("slo", "good"),
    [
        ("ttft=300ms", 2),  # excludes exactly seq 1 (TTFT 0.5)
        ("e2e=0.75s", 2),  # excludes exactly seq 1 (E2E 1.0)
        ("tpot=100ms", 1),  # seq 0 and 1 have TPOT 0.125; the 1-token seq 2 has none and meets it
        ("tpot=125ms", 3),  # bounds are inclusive, as in vLLM (metric <= bound)
        ("ttft=300ms,e2e=0.4s", 1),  # every bound must hold: seq 0 fails E2E, seq 1 fails TTFT
    ],
)
def test_goodput_counts_requests_meeting_every_bound(slo: str, good: int) -> None:
    s = _summary(_four(), slo=parse_slo(slo))
    assert s.goodput == good / 2.0
    assert s.goodput_fraction == good / 4  # the failed request is in the denominator


def test_one_token_request_meets_any_tpot_bound_but_a_missing_ttft_fails_a_ttft_bound() -> None:
    one = _ok(0, 0.0, [2.0], 2.0, 1, 1)
    no_chunks = _ok(1, 0.0, [], 0.5, 1, 0)
    slo = Slo(tpot_s=0.001)
    assert slo.meets(one) and slo.meets(no_chunks)
    assert not Slo(ttft_s=10.0).meets(no_chunks)
    assert not Slo(e2e_s=10.0).meets(_failed(2, 0.0, 0.1))


def test_empty_input_gives_none_not_nan() -> None:
    s = summarize([], window=assign_phases([]))
    assert (s.completed, s.failed, s.duration_s, s.output_tokens, s.input_tokens) == (0, 0, 0.0, 0, 0)
    values = s.as_dict()
    assert [f.name for f in fields(LoadSummary)] == list(values)
    for name in ("request_throughput", "ttft_p99_s", "itl_mean_s", "error_rate", "goodput", "lag_p99_s"):
        assert values[name] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in values.values())
    assert metric_rows(s, [], details={}) == []


def test_all_failed_gives_none_latencies_and_error_rate_one() -> None:
    events = [_failed(0, 0.0, 1.0, [0.5]), _failed(1, 0.5, 2.0), _failed(2, 1.0, None)]
    s = _summary(events, slo=Slo(ttft_s=1.0))
    assert (s.completed, s.failed) == (0, 3)
    assert s.error_rate == 1.0
    assert s.request_throughput == 0.0 and s.output_throughput == 0.0 and s.output_tokens == 0
    assert s.goodput == 0.0 and s.goodput_fraction == 0.0
    for name in ("ttft", "tpot", "itl", "e2e"):
        assert getattr(s, f"{name}_p50_s") is None and getattr(s, f"{name}_mean_s") is None
    rows = {r["metric"]: r for r in metric_rows(s, events, details={})}
    assert rows["error_rate"]["value"] == 1.0 and rows["error_rate"]["n"] == 3
    assert not any(k.startswith(("ttft", "e2e", "itl", "tpot")) for k in rows)


def test_single_request() -> None:
    events = [_ok(0, 0.0, [0.25, 0.5], 0.5, 4, 2)]
    s = _summary(events)
    assert s.request_throughput == 2.0 and s.output_throughput == 4.0
    assert s.ttft_p99_s == 0.25 and s.tpot_mean_s == 0.25 and s.itl_p50_s == 0.25 and s.e2e_p90_s == 0.5
    rows = {r["metric"]: r for r in metric_rows(s, events, details={})}
    assert rows["e2e_p99_s"]["ci_low"] == rows["e2e_p99_s"]["ci_high"] == 0.5
    assert rows["itl_mean_s"]["ci_low"] == rows["itl_mean_s"]["ci_high"] == 0.25


def test_events_without_chunk_times_use_the_chunk_count() -> None:
    # Chunk times not kept: TTFT still known, ITL is not; unknown token counts fall back to n_chunks.
    e = RequestEvent(seq=0, step=0, sent_s=0.0, first_chunk_s=0.25, n_chunks=5, end_s=1.25)
    s = _summary([e])
    assert s.ttft_mean_s == 0.25 and s.e2e_mean_s == 1.25
    assert s.itl_mean_s is None and s.itl_p99_s is None
    assert s.output_tokens == 5 and s.tpot_mean_s == 0.25  # (1.25 - 0.25) / (5 - 1)
    assert s.input_tokens is None and s.total_token_throughput is None  # input count unknown
    names = {r["metric"] for r in metric_rows(s, [e], details={})}
    assert "itl_p50_s" not in names and "total_token_throughput" not in names and "tpot_mean_s" in names


def test_open_loop_lag_is_p99_of_send_minus_schedule() -> None:
    events = _four()
    for e, lag in zip(events, [0.0, 0.25, 0.5, 0.125], strict=True):
        e.scheduled_s = e.sent_s - lag
    s = _summary(events, start_s=0.0)
    assert s.lag_p99_s == pytest.approx(np.percentile([0.0, 0.25, 0.5, 0.125], 99))


def test_only_measure_phase_counts() -> None:
    events = _four()
    assign_phases(events)
    events[1].phase = "warmup"
    events[3].phase = "cooldown"
    s = summarize(events, window=Window(0.0, 2.0))
    assert (s.completed, s.failed, s.output_tokens) == (2, 0, 4)
    assert s.ttft_mean_s == pytest.approx(0.1875)


# --- metric rows -------------------------------------------------------------------------------


def _rows(slo: Slo | None = None) -> dict[str, dict]:
    events = _four()
    s = _summary(events, slo=slo)
    details = {"filter": "step02", "step": 2, "profile": "constant", "offered": 2.0}
    return {r["metric"]: r for r in metric_rows(s, events, details=details, slo=slo)}


def test_metric_rows_shape_and_names() -> None:
    rows = _rows(Slo(ttft_s=0.3))
    expected = {
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "goodput",
        "goodput_fraction",
        "error_rate",
    } | {f"{k}_{s}_s" for k in ("ttft", "tpot", "itl", "e2e") for s in ("mean", "p50", "p90", "p95", "p99")}
    assert set(rows) == expected  # lag_p99_s: no scheduled sends
    for name, row in rows.items():
        assert row["task"] == "load" and row["filter"] == "step02"
        assert row["producer"] == "gemmawatch.load" and row["producer_version"] == gemmawatch.__version__
        assert row["details"]["step"] == 2 and "filter" not in row["details"]
        assert row["details"]["unit"] in {"s", "1", "requests/s", "tokens/s"}
        assert row["details"]["statistic"]
        assert row["ci_low"] is not None and row["ci_high"] is not None
        assert row["ci_low"] <= row["value"] + 1e-12 and row["value"] <= row["ci_high"] + 1e-12, name
        hib = name in {
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "goodput",
            "goodput_fraction",
        }
        assert row["higher_is_better"] is hib, name
    assert rows["ttft_p95_s"]["details"]["statistic"] == "p95"
    assert rows["goodput"]["details"]["slo"] == {"ttft_s": 0.3}


def test_metric_rows_n_and_intervals() -> None:
    rows = _rows(Slo(ttft_s=0.3))
    # Garwood 95 % for 3 events: (0.619, 8.767), over 2 s.
    thr = rows["request_throughput"]
    assert (thr["value"], thr["n"]) == (1.5, 3)
    assert thr["ci_low"] == pytest.approx(0.6187 / 2, abs=1e-4)
    assert thr["ci_high"] == pytest.approx(8.7673 / 2, abs=1e-4)
    good = rows["goodput"]  # 2 good requests
    assert good["value"] == 1.0 and good["details"]["count"] == 2
    assert (good["ci_low"], good["ci_high"]) == pytest.approx(poisson_rate_interval(2, 2.0))
    assert good["ci_low"] == pytest.approx(0.2422 / 2, abs=1e-4)
    err = rows["error_rate"]
    assert (err["value"], err["n"]) == (0.25, 4)
    assert (err["ci_low"], err["ci_high"]) == pytest.approx(stats.wilson_interval(1, 4))
    frac = rows["goodput_fraction"]
    assert (frac["value"], frac["n"]) == (0.5, 4)
    assert (frac["ci_low"], frac["ci_high"]) == pytest.approx(stats.wilson_interval(2, 4))
    assert rows["ttft_p50_s"]["n"] == 3 and rows["tpot_mean_s"]["n"] == 2
    assert rows["itl_p50_s"]["n"] == 6 and rows["itl_p50_s"]["details"]["requests"] == 2
    assert (rows["ttft_p90_s"]["ci_low"], rows["ttft_p90_s"]["ci_high"]) == pytest.approx(
        stats.bootstrap_stat_ci([0.25, 0.5, 0.125], stats.percentile_stat(90))
    )
    out = rows["output_throughput"]
    assert out["value"] == 4.5 and out["details"]["unit"] == "tokens/s"
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(
        stats.bootstrap_stat_ci([3, 5, 1], lambda a, axis: np.sum(a, axis=axis) / 2.0)
    )


def test_poisson_interval_known_values() -> None:
    assert poisson_rate_interval(0, 1.0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert poisson_rate_interval(10, 10.0) == pytest.approx((0.4795, 1.8390), abs=1e-4)


def test_pooled_itl_intervals_equal_the_cluster_bootstrap() -> None:
    rng = np.random.default_rng(7)
    clusters = [list(rng.gamma(2.0, 0.01, size=int(k))) for k in rng.integers(1, 30, size=25)]
    cis = m._pooled_cluster_cis(clusters, n_resamples=300)
    for label, q in (("mean", None), ("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        fn = np.mean if q is None else stats.percentile_stat(q)
        assert cis[label] == pytest.approx(stats.bootstrap_cluster_stat_ci(clusters, fn, n_resamples=300), rel=1e-9)
