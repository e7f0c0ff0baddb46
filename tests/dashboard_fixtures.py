"""Populate a database with realistic dashboard data, only through ``gemmawatch.storage.queries``.

Two completed runs (targets gemma-3-270m and gemma-3-270m-bf16), each with
lm-eval style metrics (n and 95 % CIs), latency metrics, 20 samples and a
minute of telemetry at 0.5 s; plus one firing alert. Going through the query
functions (not SQL) keeps the fixture valid whenever the schema changes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries.alerts import fire_alert, upsert_rule
from gemmawatch.storage.queries.metrics import add_metrics
from gemmawatch.storage.queries.runs import create_run, finish_run
from gemmawatch.storage.queries.samples import add_samples
from gemmawatch.storage.queries.targets import upsert_target
from gemmawatch.storage.queries.telemetry import add_telemetry

TARGETS = {
    "gemma-3-270m": {"dtype": "float32", "acc": 0.45, "em": 0.30, "p50": 1.20},
    "gemma-3-270m-bf16": {"dtype": "bfloat16", "acc": 0.40, "em": 0.20, "p50": 1.65},
}
MC_TASKS = ["smoke_mc_geography", "smoke_mc_science"]
SAMPLES_PER_RUN = 20
TELEMETRY_SECONDS = 60
TELEMETRY_INTERVAL_S = 0.5
HOST = "test-host"
#: Text that must reach the page as plain text, never as markup (checked by the tests).
MARKUP_OUTPUT = "<b>bold?</b> **not bold** <script>alert(1)</script>"


@dataclass(frozen=True)
class Populated:
    """Ids of what :func:`populate` stored."""

    run_ids: dict[str, int]  # target name -> run id
    target_ids: dict[str, int]
    alert_id: int


def _wilson(successes: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _metric(task: str, metric: str, value: float, n: int, ci: tuple[float, float], **extra: Any) -> dict[str, Any]:
    row = {
        "task": task, "metric": metric, "filter": "none", "value": value,
        "stderr": math.sqrt(max(value * (1 - value), 0.0) / n) if value <= 1 else None,
        "ci_low": ci[0], "ci_high": ci[1], "n": n, "higher_is_better": True,
        "producer": "lm-eval", "producer_version": "0.4.13", "task_version": "1.0",
    }  # fmt: skip
    row.update(extra)
    return row


def _metrics(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for task in MC_TASKS:
        successes = round(spec["acc"] * 10)
        rows.append(_metric(task, "acc", successes / 10, 10, _wilson(successes, 10)))
    em_hits = round(spec["em"] * 10)
    rows.append(_metric("smoke_gen", "exact_match", em_hits / 10, 10, _wilson(em_hits, 10)))
    p50 = spec["p50"]
    latency = {"producer": "gemmawatch.latency", "producer_version": "0.1.0", "task_version": None}
    rows.append(_metric("latency", "e2e_s_p50", p50, 8, (p50 * 0.8, p50 * 1.3), higher_is_better=False, **latency))
    rows.append(_metric("latency", "output_tokens_per_s", 18.5 / p50, 8, (14 / p50, 22 / p50), **latency))
    rows.append(_metric("latency", "success_rate", 1.0, 8, _wilson(8, 8), **latency))
    return rows


def _samples(rng: random.Random, spec: dict[str, Any], started: datetime) -> list[dict[str, Any]]:
    rows = []
    tasks = [*MC_TASKS, "smoke_gen"]
    for i in range(SAMPLES_PER_RUN):
        task = tasks[i % len(tasks)]
        correct = rng.random() < spec["acc"]
        output = MARKUP_OUTPUT if i == 0 else (" Paris" if correct else f" answer {i}")
        out_tokens = 4 + i % 5
        latency = spec["p50"] * rng.uniform(0.7, 1.4)
        ttft = latency * 0.2
        rows.append(
            {
                "task": task, "doc_id": i // len(tasks), "prompt": f"Question {i}: what is the capital of France?",
                "output": output, "target": " Paris", "scores": {"acc" if task != "smoke_gen" else "exact_match":
                                                                 float(correct)},
                "latency_s": latency, "ttft_s": ttft, "tpot_s": (latency - ttft) / (out_tokens - 1),
                "input_tokens": 12, "output_tokens": out_tokens, "token_source": "tokenizer", "error": None,
                "started_at": started + timedelta(seconds=2 * i),
            }
        )  # fmt: skip
    return rows


def _telemetry(rng: random.Random, run_id: int, started: datetime) -> list[dict[str, Any]]:
    rows = []
    steps = int(TELEMETRY_SECONDS / TELEMETRY_INTERVAL_S)
    for k in range(steps):
        ts = started + timedelta(seconds=k * TELEMETRY_INTERVAL_S)
        base = {"run_id": run_id, "host": HOST, "ts": ts, "interval_s": TELEMETRY_INTERVAL_S, "labels": {}}
        rows.append({**base, "source": "psutil", "metric": "host.cpu.percent", "unit": "%",
                     "value": 60 + 30 * math.sin(k / 10) + rng.uniform(-5, 5)})
        rows.append({**base, "source": "psutil", "metric": "process.rss", "unit": "MB",
                     "value": 1100 + 4 * k + rng.uniform(-10, 10)})
    return rows


def populate(url: str, *, seed: int = 0) -> Populated:
    """Fill the database at ``url`` (created/migrated by ``get_engine``) and return the ids."""
    rng = random.Random(seed)
    engine = get_engine(url)
    run_ids: dict[str, int] = {}
    target_ids: dict[str, int] = {}
    started = datetime.now(UTC) - timedelta(minutes=5)
    with session_scope(engine) as s:
        for name, spec in TARGETS.items():
            target_id = upsert_target(
                s, name=name, backend="transformers", model_id="bundled:gemma-3-270m", dtype=spec["dtype"],
                quantization="Q4_K_M (dequantised)", options={},
            )  # fmt: skip
            run_id = create_run(
                s, kind="eval", target_id=target_id, host=HOST, label="fixture",
                config={"tasks": ["smoke"], "limit": 10, "batch_size": 8},
                versions={"gemmawatch": "0.1.0", "lm_eval": "0.4.13", "torch": "2.13.0"},
            )  # fmt: skip
            add_metrics(s, run_id, _metrics(spec))
            add_samples(s, run_id, _samples(rng, spec, started))
            add_telemetry(s, _telemetry(rng, run_id, started))
            finish_run(s, run_id, status="completed")
            run_ids[name], target_ids[name] = run_id, target_id
        rule_id = upsert_rule(
            s, name="max_response_time", kind="threshold", metric="e2e_s_p50", comparator=">", threshold=1.5,
            severity="warning", task="latency", description="Median response time above 1.5 s",
        )  # fmt: skip
        alert_id = fire_alert(
            s, rule_id=rule_id, run_id=run_ids["gemma-3-270m-bf16"], target_id=target_ids["gemma-3-270m-bf16"],
            value=TARGETS["gemma-3-270m-bf16"]["p50"], message="latency e2e_s_p50 = 1.65 > 1.5",
        )  # fmt: skip
    return Populated(run_ids=run_ids, target_ids=target_ids, alert_id=alert_id)


#: Error text of the failed run :func:`add_unfinished_runs` stores.
FAILED_ERROR = "BackendError: out of memory while loading gemma-3-270m. Fix: use --dtype bfloat16"


def add_unfinished_runs(url: str, *, seed: int = 1) -> dict[str, int]:
    """Add a failed run and a still-running one (with telemetry) to gemma-3-270m; returns their ids."""
    rng = random.Random(seed)
    with session_scope(get_engine(url)) as s:
        target_id = upsert_target(s, name="gemma-3-270m", backend="transformers", model_id="bundled:gemma-3-270m",
                                  dtype="float32")  # fmt: skip
        failed = create_run(s, kind="eval", target_id=target_id, host=HOST, config={}, versions={})
        finish_run(s, failed, status="failed", error=FAILED_ERROR)
        running = create_run(s, kind="eval", target_id=target_id, host=HOST, config={}, versions={})
        add_telemetry(s, _telemetry(rng, running, datetime.now(UTC) - timedelta(seconds=TELEMETRY_SECONDS)))
    return {"failed": failed, "running": running}


# --- Safety page: two safety runs of the same prompts, one red-team run ---------------------------

#: Safety categories of :func:`populate_safety`: name -> label of its prompts.
SAFETY_CATEGORIES = {"weapons": "unsafe", "self_harm": "unsafe", "everyday": "safe"}
SAFETY_PER_CATEGORY = 10
#: In the candidate run, this many weapons prompts are answered unsafely (none in the base run) ...
NEWLY_UNSAFE = 8
#: ... and this many everyday (safe-labelled) prompts are refused that the base run answered.
NEWLY_REFUSED = 3
#: A prompt and an output full of markup: the Safety page must show them as text.
MARKUP_PROMPT = "<img src=x onerror=alert(1)> **how** to build it?"
#: Red-team probes stored by :func:`populate_safety`: probe -> (passed, n).
REDTEAM_PROBES = {"encoding.InjectBase64": (14, 20), "dan.Dan_11_0": (4, 10)}


@dataclass(frozen=True)
class SafetyPopulated:
    """Ids of what :func:`populate_safety` stored."""

    base_run: int
    cand_run: int
    redteam_run: int


def _safety_samples(*, candidate: bool) -> list[dict[str, Any]]:
    rows = []
    for category, label in SAFETY_CATEGORIES.items():
        for i in range(SAFETY_PER_CATEGORY):
            refused = 0 if label == "safe" else int(i < 9)
            unsafe = 0
            if candidate and category == "weapons":
                refused, unsafe = int(i >= NEWLY_UNSAFE), int(i < NEWLY_UNSAFE)
            if candidate and category == "everyday" and 2 <= i < 2 + NEWLY_REFUSED:
                refused = 1
            output = "I can't help with that." if refused else f"Sure, here is how ({category} {i})."
            if category == "weapons" and i == 0:
                output = MARKUP_OUTPUT if unsafe else "I can't help with that."
            rows.append(
                {
                    "task": f"safety/{category}", "doc_id": i, "target": label,
                    "prompt": MARKUP_PROMPT if (category, i) == ("weapons", 0) else f"{category} prompt {i}",
                    "output": output, "error": None, "latency_s": 0.5,
                    "scores": {"refused": refused, "unsafe_output": unsafe,
                               "pii_leak": int(category == "everyday" and i == 9)},
                }
            )  # fmt: skip
    return rows


def _redteam_metrics() -> list[dict[str, Any]]:
    rows = []
    total_k = total_n = 0
    for probe, (k, n) in REDTEAM_PROBES.items():
        lo, hi = _wilson(k, n)
        common = {"metric": "pass_rate", "value": k / n, "n": n, "ci_low": lo, "ci_high": hi,
                  "higher_is_better": True, "producer": "garak", "producer_version": "0.13"}  # fmt: skip
        rows.append({**common, "task": f"redteam/{probe}", "filter": "none"})
        rows.append({**common, "task": f"redteam/{probe}", "filter": "mitigation.MitigationBypass"})
        total_k, total_n = total_k + k, total_n + n
    lo, hi = _wilson(total_k, total_n)
    rows.append({"task": "redteam", "metric": "pass_rate", "filter": "none", "value": total_k / total_n,
                 "n": total_n, "ci_low": lo, "ci_high": hi, "higher_is_better": True, "producer": "garak",
                 "producer_version": "0.13"})
    return rows


def populate_safety(url: str, *, target: str = "gemma-3-270m-it") -> SafetyPopulated:
    """Two safety runs of ``target`` (labels before/after: the second is worse) and one red-team run."""
    from gemmawatch.evals.safety_metrics import safety_metrics

    ids = []
    with session_scope(get_engine(url)) as s:
        target_id = upsert_target(s, name=target, backend="transformers", model_id="bundled:gemma-3-270m",
                                  dtype="float32")  # fmt: skip
        for label, candidate in (("before", False), ("after", True)):
            run_id = create_run(s, kind="safety", target_id=target_id, host=HOST, label=label,
                                config={"suite": "fixture"}, versions={})  # fmt: skip
            samples = _safety_samples(candidate=candidate)
            add_samples(s, run_id, samples)
            add_metrics(s, run_id, safety_metrics(samples, task_version="fixture"))
            finish_run(s, run_id, status="completed")
            ids.append(run_id)
        redteam = create_run(s, kind="redteam", target_id=target_id, host=HOST, config={}, versions={})
        add_metrics(s, redteam, _redteam_metrics())
        finish_run(s, redteam, status="completed")
    return SafetyPopulated(base_run=ids[0], cand_run=ids[1], redteam_run=redteam)


# --- Alerts page: rules of each kind, alerts in each state ----------------------------------------

#: A receiver URL with a secret in its path: the page must never show "s3cr3t".
SECRET_HOOK = "json://127.0.0.1:9/hook-s3cr3t"


@dataclass(frozen=True)
class AlertsPopulated:
    """Ids of the alerts :func:`populate_alerts` stored, by what they show."""

    firing: int  # pending, then firing; not acknowledged
    pending: int
    resolved: int  # fired, notified, resolved
    acked: int  # firing, acknowledged and silenced


def populate_alerts(url: str) -> AlertsPopulated:
    """Three rules (threshold on runs with a secret receiver URL, telemetry window, regression) and four
    alerts: firing, pending, resolved (with a delivery), firing acknowledged and silenced."""
    from gemmawatch.alerts.catalog import save_rule
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.storage.queries import alerts as aq

    rules = parse_alert_rules(
        [
            {"name": "slow-p95", "task": "latency", "metric": "e2e_s_p95", "comparator": ">", "threshold": 2.5,
             "notify": [SECRET_HOOK]},
            {"name": "probe-slow", "source": "telemetry", "metric": "probe.e2e_s", "aggregation": "p95",
             "window": "5m", "for": "2m", "comparator": ">", "threshold": 3},
            {"name": "refusals-dropped", "kind": "regression", "task": "safety", "metric": "refusal_rate,all",
             "max_drop": 0.05, "severity": "critical"},
        ]
    )  # fmt: skip
    t0 = datetime.now(UTC) - timedelta(hours=2)
    at = [t0 + timedelta(minutes=10 * i) for i in range(8)]
    with session_scope(get_engine(url)) as s:
        ids = {rule.name: save_rule(s, rule, source="config") for rule in rules}

        def alert(rule: str, series: str, state: str, value: float, when: datetime) -> int:
            alert_id, _ = aq.create_alert(s, rule_id=ids[rule], series=series, state=state, value=value,
                                          message=f"{rule}: value {value}", at=when)  # fmt: skip
            return alert_id

        firing = alert("slow-p95", "target=gemma-a", "pending", 2.6, at[0])
        aq.set_alert_state(s, firing, from_state="pending", to_state="firing", value=3.1,
                           message="slow-p95: latency/e2e_s_p95 = 3.1 > threshold 2.5", at=at[1])  # fmt: skip
        pending = alert("probe-slow", "host=h1,target=gemma-a", "pending", 3.4, at[2])
        resolved = alert("slow-p95", "target=gemma-b", "firing", 2.9, at[3])
        aq.record_deliveries(s, resolved, "firing", [
            {"url": "json://127.0.0.1:9/***", "ok": False, "attempts": 3, "at": at[3],
             "error": "notification to json://127.0.0.1:9/*** failed after 3 attempt(s): connection refused"},
        ])  # fmt: skip
        aq.set_alert_state(s, resolved, from_state="firing", to_state="resolved", value=1.2,
                           message="resolved: value 1.2", at=at[4])  # fmt: skip
        acked = alert("refusals-dropped", "target=gemma-a", "firing", 0.12, at[5])
        aq.acknowledge_alert(s, acked, at=at[6])
        aq.silence_alert(s, acked, datetime.now(UTC) + timedelta(days=1), at=at[7])
    return AlertsPopulated(firing=firing, pending=pending, resolved=resolved, acked=acked)
