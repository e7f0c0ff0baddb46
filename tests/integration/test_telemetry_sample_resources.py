"""Per-sample attribution (sample_resources) and the latency task's energy per token, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from gemmawatch.evals.latency import latency_energy_metrics
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.queries import runs, samples, telemetry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def reading(run_id: int | None, metric: str, ms: int, value: float, unit: str, **labels: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "host": "box",
        "source": "nvml" if metric.startswith("gpu.") else "psutil",
        "metric": metric,
        "unit": unit,
        "value": value,
        "ts": at(ms),
        "interval_s": 0.1,
        "labels": labels,
    }


def sample(task: str, doc_id: int, start_ms: int | None, latency_s: float | None, tokens: int) -> dict[str, Any]:
    return {
        "task": task,
        "doc_id": doc_id,
        "prompt": f"prompt {doc_id}",
        "output": "out",
        "started_at": at(start_ms) if start_ms is not None else None,
        "latency_s": latency_s,
        "output_tokens": tokens,
    }


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def seed(engine: Engine, *, with_energy: bool) -> int:
    """10 s of 10 Hz telemetry with known values, and five samples."""
    with session_scope(engine) as s:
        run_id = runs.create_run(s, kind="eval", target_id=None, config={}, host="box", versions={})
        rows = []
        for k in range(101):  # t = 0.0 .. 10.0 s
            ms = 100 * k
            rows.append(reading(run_id, "cpu.percent", ms, float(k), "%"))
            rows.append(reading(run_id, "gpu.power_w", ms, 100.0, "W", device="0"))
            rows.append(reading(run_id, "gpu.power_w", ms, 200.0, "W", device="1"))
            if with_energy:  # 100 W and 200 W: the counters grow by 10 J and 20 J per 0.1 s
                rows.append(reading(run_id, "gpu.energy_j", ms, 5000.0 + 10.0 * k, "J", device="0"))
                rows.append(reading(run_id, "gpu.energy_j", ms, 20.0 * k, "J", device="1"))
        rows.append(reading(None, "cpu.percent", 2000, 999.0, "%"))  # outside the run: never counted
        telemetry.add_telemetry(s, rows)
        samples.add_samples(
            s,
            run_id,
            [
                sample("latency", 0, 1000, 2.0, 20),  # [1.0, 3.0]: 21 readings of each series
                sample("latency", 1, 5030, 0.05, 1),  # [5.03, 5.08]: no reading inside, 5.1 s is nearest
                sample("gen", 0, 20000, 0.05, 4),  # long after the telemetry: nothing within one interval
                sample("loglikelihood", 0, None, None, 0),  # no timing: left out
                sample("latency", 2, 1000, None, 3),  # failed request, no latency: left out
            ],
        )
    return run_id


def test_window_means_maxima_nearest_and_energy(engine: Engine) -> None:
    run_id = seed(engine, with_energy=True)
    with session_scope(engine) as s:
        got = telemetry.sample_resources(s, run_id)
    assert [(r["task"], r["doc_id"]) for r in got] == [("gen", 0), ("latency", 0), ("latency", 1)]
    gen, long, short = got
    assert long["started_at"] == at(1000) and long["ended_at"] == at(3000) and long["latency_s"] == 2.0
    assert long["metrics"]["cpu.percent"] == {"mean": pytest.approx(20.0), "max": 30.0, "n": 21, "nearest": False}
    power = long["metrics"]["gpu.power_w"]
    assert power == {"mean": pytest.approx(150.0), "max": 200.0, "n": 42, "nearest": False}
    assert long["metrics"]["process.rss_mb"] is None  # no such readings in the run
    assert long["energy_j"] == pytest.approx(200.0 + 400.0)
    assert long["energy_per_output_token_j"] == pytest.approx(30.0)
    assert short["metrics"]["cpu.percent"] == {"mean": 51.0, "max": 51.0, "n": 1, "nearest": True}
    assert short["metrics"]["gpu.power_w"]["n"] == 2 and short["metrics"]["gpu.power_w"]["nearest"] is True
    assert short["energy_j"] == pytest.approx(0.05 * 300.0)  # interpolated inside one 0.1 s step
    assert short["energy_per_output_token_j"] == pytest.approx(15.0)
    assert all(v is None for v in gen["metrics"].values())
    assert gen["energy_j"] is None and gen["energy_per_output_token_j"] is None


def test_task_filter_metric_choice_and_no_energy_counter(engine: Engine) -> None:
    run_id = seed(engine, with_energy=False)
    with session_scope(engine) as s:
        got = telemetry.sample_resources(s, run_id, task="latency", metrics=["gpu.power_w"])
        assert telemetry.sample_resources(s, run_id + 1000) == []
        none_asked = telemetry.sample_resources(s, run_id, task="latency", metrics=())
    assert [r["doc_id"] for r in got] == [0, 1]
    assert set(got[0]["metrics"]) == {"gpu.power_w"}
    assert all(r["energy_j"] is None and r["energy_per_output_token_j"] is None for r in got)
    assert [r["metrics"] for r in none_asked] == [{}, {}]
    assert latency_energy_metrics(none_asked) == []  # CPU-only machine: no energy metric


def test_latency_energy_per_output_token_metric(engine: Engine) -> None:
    run_id = seed(engine, with_energy=True)
    with session_scope(engine) as s:
        resources = telemetry.sample_resources(s, run_id, task="latency", metrics=())
    (row,) = latency_energy_metrics(resources)
    assert row["task"] == "latency" and row["metric"] == "energy_per_output_token_j"
    assert row["value"] == pytest.approx((600.0 + 15.0) / (20 + 1))
    assert row["n"] == 2 and row["higher_is_better"] is False
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert row["details"]["unit"] == "J/token" and row["details"]["output_tokens"] == 21
    assert row["details"]["energy_j"] == pytest.approx(615.0)
