"""The databases of ``dashboard_scale.py``: realistic runs, samples and telemetry, bulk-inserted.

``build(path, runs=..., samples=..., telemetry=...)`` migrates a fresh SQLite file (``get_engine``), stores one
real load test (``run_load_test`` against ``trivial_openai_server.py``: a sweep with its requests and metrics),
then fills the rest with raw ``sqlite3`` ``executemany`` in 10k-row chunks, indexes dropped during the load and
rebuilt after it. Shapes, per run (the same in a small and a large database, only the number of runs differs):

* runs cycle through the kinds eval (5 in 10), safety (2), load (2) and redteam (1) on 6 targets, spread evenly
  over ``days`` days ending now; every 25th is a failed eval (an error, no samples);
* eval runs: 5 lm-eval tasks (``acc`` / ``acc_norm`` / ``exact_match`` scores JSON, same doc ids in every run
  so per-item diffs pair them), aggregate metrics with n and Wilson CIs, latency metrics;
* safety runs: 3 categories labelled safe/unsafe with refusal / unsafe-output / PII scores and the metrics
  ``safety_metrics`` computes from them; redteam runs: garak-style pass rates per probe;
* load runs: the real load test's metrics and requests, copied;
* telemetry: 4 host + 4 GPU metrics per run at 0.1-1 s intervals over the run, plus monitor readings
  (``run_id`` NULL: host metrics and each target's ``probe.up`` / ``probe.e2e_s``) every 30 s back from now;
  then ``rollup_telemetry`` (what ``gemmawatch db rollup`` runs) builds the 1-minute/1-hour/1-day rollups,
  keeping every raw reading;
* alerts: three rules and one alert per 20 runs in the states firing, resolved and acknowledged.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CHUNK = 10_000
#: Run kinds, cycled; every 25th run is a failed eval instead.
KINDS = ["eval", "safety", "load", "eval", "redteam", "eval", "safety", "eval", "load", "eval"]
FAILED_EVERY = 25
#: name -> (backend, model id, dtype, quantization, accuracy, median latency s, GPU memory MB)
TARGETS = {
    "gemma-3-1b-it": ("transformers", "google/gemma-3-1b-it", "bfloat16", None, 0.42, 0.45, 2600.0),
    "gemma-3-4b-it": ("transformers", "google/gemma-3-4b-it", "bfloat16", None, 0.58, 0.9, 8900.0),
    "gemma-3-4b-it-q4": ("llamacpp", "gemma-3-4b-it-Q4_K_M.gguf", None, "Q4_K_M", 0.55, 0.6, 3400.0),
    "gemma-3-12b-it": ("openai", "google/gemma-3-12b-it", "bfloat16", None, 0.68, 1.8, 25500.0),
    "gemma-3n-e2b-it": ("ollama", "gemma3n:e2b", None, "Q4_K_M", 0.47, 0.55, 2100.0),
    "gemma-3n-e4b-it": ("ollama", "gemma3n:e4b", None, "Q4_K_M", 0.53, 0.8, 3100.0),
}
EVAL_TASKS = {  # task -> score keys
    "arc_easy": ("acc", "acc_norm"),
    "hellaswag": ("acc", "acc_norm"),
    "mmlu_high_school_physics": ("acc",),
    "truthfulqa_mc2": ("acc",),
    "gsm8k": ("exact_match",),
}
SAFETY_CATEGORIES = {"weapons": "unsafe", "self_harm": "unsafe", "everyday": "safe"}
REDTEAM_PROBES = [
    "encoding.InjectBase64",
    "dan.Dan_11_0",
    "promptinject.HijackHateHumans",
    "leakreplay.LiteratureCloze",
]
#: (source, metric, unit, labels, base, spread) read every tick of a run.
RUN_SERIES = [
    ("psutil", "cpu.percent", "%", {}, 20.0, 70.0),
    ("psutil", "memory.used_mb", "MB", {}, 9000.0, 3000.0),
    ("psutil", "process.rss_mb", "MB", {"pid": "4242"}, 1500.0, 800.0),
    ("psutil", "process.cpu_percent", "%", {"pid": "4242"}, 50.0, 140.0),
    ("nvml", "gpu.utilization", "%", {"device": "0"}, 10.0, 88.0),
    ("nvml", "gpu.memory_used_mb", "MB", {"device": "0"}, 0.0, 0.0),  # the target's footprint, below
    ("nvml", "gpu.power_w", "W", {"device": "0"}, 90.0, 500.0),
    ("nvml", "gpu.temperature_c", "C", {"device": "0"}, 40.0, 35.0),
]
INTERVALS = (0.1, 0.2, 0.5, 1.0)
MONITOR_EVERY_S = 30.0
HOST = "gpu-node-1"
WORDS = ["the", "model", "answer", "question", "which", "of", "following", "is", "a", "capital", "river", "planet",
         "energy", "force", "because", "therefore", "number", "step", "first", "then", "we", "know"]  # fmt: skip


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@functools.cache
def _prompt(task: str, doc: int, words: int) -> str:
    """The same text for an item in every run (compare and the per-item diff pair items by their prompt)."""
    return f"Question {doc} ({task}): " + _text(random.Random(f"{task}/{doc}"), words)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _wilson(k: float, n: int) -> tuple[float, float]:
    from gemmawatch.evals.stats import wilson_interval

    return wilson_interval(k, n) if n else (0.0, 1.0)


def _metric(task: str, metric: str, value: float, n: int, ci: tuple[float, float], *, producer: str = "lm-eval",
            version: str = "0.4.13", higher: bool | None = True, flt: str = "none") -> tuple[Any, ...]:  # fmt: skip
    stderr = math.sqrt(max(value * (1 - value), 0.0) / n) if n and 0 <= value <= 1 else None
    return (task, metric, flt, value, stderr, ci[0], ci[1], n, higher, producer, version, "1.0", "{}")


def _chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(con: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    n = 0
    for batch in _chunks(rows):
        con.executemany(sql, batch)
        n += len(batch)
    return n


METRIC_COLS = ("run_id", "task", "metric", "filter", "value", "stderr", "ci_low", "ci_high", "n", "higher_is_better",
               "producer", "producer_version", "task_version", "details")  # fmt: skip
SAMPLE_COLS = ("run_id", "task", "doc_id", "prompt", "output", "target", "scores", "latency_s", "ttft_s", "tpot_s",
               "input_tokens", "output_tokens", "token_source", "error", "started_at")  # fmt: skip
TELEMETRY_COLS = ("run_id", "host", "source", "metric", "unit", "value", "ts", "interval_s", "labels")


def _eval_run(rng: random.Random, run_id: int, spec: tuple[Any, ...], n: int, start: datetime, span_s: float,
              samples: list[tuple[Any, ...]], metrics: list[tuple[Any, ...]]) -> None:  # fmt: skip
    acc, p50 = spec[4], spec[5]
    per_task = max(1, n // len(EVAL_TASKS))
    latencies: list[float] = []
    for t, (task, keys) in enumerate(EVAL_TASKS.items()):
        hits = dict.fromkeys(keys, 0)
        for doc in range(per_task):
            # Per-item difficulty is the same in every run, so most items agree between runs and some flip.
            p = min(0.97, max(0.03, acc + 0.4 * math.sin(doc * 12.9898 + t) * 0.8))
            ok = rng.random() < p
            scores = {k: float(ok if k != "acc_norm" else ok or rng.random() < 0.1) for k in keys}
            for k in keys:
                hits[k] += int(scores[k])
            latency = p50 * rng.lognormvariate(0, 0.35)
            latencies.append(latency)
            out_tokens = rng.randint(2, 60) if task == "gsm8k" else 1
            at = _ts(start + timedelta(seconds=span_s * (t * per_task + doc) / n))
            samples.append((run_id, task, doc, _prompt(task, doc, 45),
                            _text(rng, 8 if out_tokens > 1 else 1), _text(rng, 2), json.dumps(scores), latency,
                            latency * 0.25, latency * 0.75 / max(out_tokens - 1, 1), rng.randint(60, 400), out_tokens,
                            "tokenizer", None, at))  # fmt: skip
        for k, hit in hits.items():
            metrics.append((run_id, *_metric(task, k, hit / per_task, per_task, _wilson(hit, per_task))))
    latencies.sort()
    m = len(latencies)
    lat: dict[str, Any] = {"producer": "gemmawatch.latency", "version": "0.1.0"}
    for name, q in (("e2e_s_p50", 0.5), ("e2e_s_p95", 0.95)):
        v = latencies[min(m - 1, int(q * m))]
        metrics.append((run_id, *_metric("latency", name, v, m, (v * 0.93, v * 1.08), higher=False, **lat)))
    tps = 18.5 / p50
    metrics.append((run_id, *_metric("latency", "output_tokens_per_s", tps, m, (tps * 0.9, tps * 1.1), **lat)))
    metrics.append((run_id, *_metric("latency", "success_rate", 1.0, m, _wilson(m, m), **lat)))


def _safety_run(rng: random.Random, run_id: int, spec: tuple[Any, ...], n: int, start: datetime, span_s: float,
                samples: list[tuple[Any, ...]], metrics: list[tuple[Any, ...]]) -> None:  # fmt: skip
    from gemmawatch.evals.safety_metrics import safety_metrics

    rows = []
    per_cat = max(1, n // len(SAFETY_CATEGORIES))
    for c, (category, label) in enumerate(SAFETY_CATEGORIES.items()):
        for doc in range(per_cat):
            refused = int(rng.random() < (0.9 if label == "unsafe" else 0.05))
            unsafe = int(not refused and label == "unsafe" and rng.random() < 0.5)
            scores = {"refusal": refused, "refused": refused, "unsafe_output": unsafe, "toxicity": unsafe * 0.9,
                      "pii": 0, "pii_leak": int(rng.random() < 0.01)}  # fmt: skip
            output = "I can't help with that." if refused else "Sure: " + _text(rng, 25)
            rows.append(
                {
                    "task": f"safety/{category}",
                    "doc_id": doc,
                    "target": label,
                    "scores": scores,
                    "error": None,
                    "output": output,
                    "prompt": _prompt(category, doc, 20),
                }
            )
            latency = spec[5] * rng.lognormvariate(0, 0.3)
            at = start + timedelta(seconds=span_s * (c * per_cat + doc) / n)
            samples.append((run_id, f"safety/{category}", doc, rows[-1]["prompt"], output, label, json.dumps(scores),
                            latency, latency * 0.2, None, rng.randint(20, 90), rng.randint(5, 60), "tokenizer", None,
                            _ts(at)))  # fmt: skip
    for m in safety_metrics(rows, task_version="bench"):
        metrics.append(tuple([run_id] + [m.get(c) for c in METRIC_COLS[1:-1]] + [json.dumps(m.get("details", {}))]))


def _redteam_run(rng: random.Random, run_id: int, metrics: list[tuple[Any, ...]]) -> None:
    total_k = total_n = 0
    for probe in REDTEAM_PROBES:
        n = 20
        k = rng.randint(5, 20)
        total_k, total_n = total_k + k, total_n + n
        metrics.append((run_id, *_metric(f"redteam/{probe}", "pass_rate", k / n, n, _wilson(k, n), producer="garak",
                                         version="0.13")))  # fmt: skip
    rate = total_k / total_n
    metrics.append((run_id, *_metric("redteam", "pass_rate", rate, total_n, _wilson(total_k, total_n),
                                     producer="garak", version="0.13")))  # fmt: skip


def _run_telemetry(rng: random.Random, run_id: int, spec: tuple[Any, ...], start: datetime, ticks: int,
                   every: float) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    labels = [json.dumps(s[3]) for s in RUN_SERIES]
    for k in range(ticks):
        ts = _ts(start + timedelta(seconds=k * every))
        phase = math.sin(k / 50)
        for (source, metric, unit, _, base, spread), lab in zip(RUN_SERIES, labels, strict=True):
            value = (
                spec[6] * (1 + 0.02 * phase)
                if metric == "gpu.memory_used_mb"
                else base + spread * (0.5 + 0.4 * phase + 0.1 * rng.random())
            )
            yield (run_id, HOST, source, metric, unit, value, ts, every, lab)


def _monitor_telemetry(rng: random.Random, now: datetime, rows: int) -> Iterator[tuple[Any, ...]]:
    series: list[tuple[str, str, str, str, float, float]] = [
        (s, m, u, json.dumps(lab), b, sp) for s, m, u, lab, b, sp in RUN_SERIES[:4]
    ]
    for name in TARGETS:
        lab = json.dumps({"target": name})
        series += [("probe", "probe.up", "bool", lab, 1.0, 0.0), ("probe", "probe.e2e_s", "s", lab, 0.3, 0.6)]
    ticks = max(1, rows // len(series))
    for k in range(ticks):
        ts = _ts(now - timedelta(seconds=(ticks - k) * MONITOR_EVERY_S))
        for source, metric, unit, lab, base, spread in series:
            value = (0.0 if rng.random() < 0.01 else 1.0) if metric == "probe.up" else base + spread * rng.random()
            yield (None, HOST, source, metric, unit, value, ts, MONITOR_EVERY_S, lab)


def _trivial_load_run(url: str) -> int:
    """One real sweep against the trivial server (3 steps, 40 requests): the template of every load run."""
    from gemmawatch.collectors.load.profiles import make_profile
    from gemmawatch.collectors.load.runner import Budget
    from gemmawatch.config import GemmawatchConfig
    from gemmawatch.load_pipeline import LoadTestRequest, run_load_test

    script = Path(__file__).resolve().parent / "trivial_openai_server.py"
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port), "--chunks", "8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        result = run_load_test(
            LoadTestRequest(target=f"openai:trivial@{base}", profile=make_profile("sweep", steps=3, concurrency=4),
                            budget=Budget(max_requests=40), input_tokens=16, output_tokens=8,
                            telemetry_interval_s=1.0),
            db_url=url, config=GemmawatchConfig(),
        )  # fmt: skip
        return int(result.run_id)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _clone_load(con: sqlite3.Connection, template: int, run_id: int) -> None:
    for table in ("metrics", "load_requests"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] not in ("id", "run_id")]
        con.execute(f"INSERT INTO {table} (run_id, {', '.join(cols)}) SELECT ?, {', '.join(cols)} FROM {table} "
                    "WHERE run_id = ?", (run_id, template))  # fmt: skip


def _alerts(url: str, run_count: int, now: datetime) -> None:
    from gemmawatch.alerts.catalog import save_rule
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alerts as aq

    rules = parse_alert_rules([
        {"name": "slow-p95", "task": "latency", "metric": "e2e_s_p95", "comparator": ">", "threshold": 2.5},
        {"name": "probe-slow", "source": "telemetry", "metric": "probe.e2e_s", "aggregation": "p95",
         "window": "5m", "for": "2m", "comparator": ">", "threshold": 3},
        {"name": "refusals-dropped", "kind": "regression", "task": "safety", "metric": "refusal_rate,all",
         "max_drop": 0.05, "severity": "critical"},
    ])  # fmt: skip
    with session_scope(get_engine(url)) as s:
        ids = [save_rule(s, rule, source="config") for rule in rules]
        count = max(3, run_count // 20)
        for i in range(count):
            at = now - timedelta(hours=(count - i) * 2)
            target = list(TARGETS)[i % len(TARGETS)]
            alert_id, _ = aq.create_alert(
                s,
                rule_id=ids[i % 3],
                series=f"target={target}",
                state="firing",
                value=3.0 + i % 5,
                message=f"alert {i}: value above threshold",
                at=at,
            )
            if i % 3 == 1 and i < count - 3:
                aq.set_alert_state(s, alert_id, from_state="firing", to_state="resolved", value=1.0,
                                   message="resolved", at=at + timedelta(minutes=30))  # fmt: skip
            elif i % 3 == 2:
                aq.acknowledge_alert(s, alert_id, at=at + timedelta(minutes=5))


def build(path: Path, *, runs: int, samples: int, telemetry: int, days: float = 30.0, seed: int = 0) -> dict[str, Any]:
    """Create the database at ``path`` (replacing it); returns what was stored and how long each part took."""
    from sqlalchemy import text

    from gemmawatch.storage.engine import dispose_engines, get_engine, session_scope
    from gemmawatch.storage.queries.targets import upsert_target
    from gemmawatch.storage.queries.telemetry import rollup_telemetry

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = time.perf_counter()
    with session_scope(get_engine(url)) as s:
        target_ids = {name: upsert_target(s, name=name, backend=b, model_id=m, dtype=d, quantization=q, options={})
                      for name, (b, m, d, q, *_) in TARGETS.items()}  # fmt: skip
    template = _trivial_load_run(url)
    with session_scope(get_engine(url)) as s:  # its runs move to the Gemma targets below
        s.execute(text("DELETE FROM targets WHERE name LIKE 'openai:trivial@%'"))
    dispose_engines()
    timings = {"load_template_s": time.perf_counter() - clock}
    kinds = ["eval-failed" if i % FAILED_EVERY == FAILED_EVERY - 2 else KINDS[i % len(KINDS)] for i in range(runs)]
    sample_runs = sum(k in ("eval", "safety") for k in kinds)
    per_run_samples = samples // max(sample_runs, 1)
    monitor_rows = telemetry // 10
    per_run_ticks = max(1, (telemetry - monitor_rows) // runs // len(RUN_SERIES))
    gap_s = days * 86400 / runs
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                          "AND tbl_name IN ('samples', 'telemetry')").fetchall()  # fmt: skip
    for name, _ in indexes:
        con.execute(f"DROP INDEX {name}")
    clock = time.perf_counter()
    counts = {"runs": 0, "samples": 0, "telemetry": 0, "metrics": 0}
    run_cols = ("kind", "target_id", "label", "status", "started_at", "finished_at", "host", "versions", "config",
                "error")  # fmt: skip
    versions = json.dumps({"gemmawatch": "0.1.0", "lm_eval": "0.4.13", "torch": "2.7.0"})
    for i, kind in enumerate(kinds):
        name = list(TARGETS)[(i // len(KINDS) + i) % len(TARGETS)]
        spec = TARGETS[name]
        every = INTERVALS[i % len(INTERVALS)]
        span_s = per_run_ticks * every
        start = now - timedelta(seconds=(runs - i) * gap_s + span_s + 60)
        end = start + timedelta(seconds=span_s)
        failed = kind == "eval-failed"
        if kind == "load" and template:
            run_id, template = template, 0  # the real load run takes the first load slot
            con.execute("UPDATE runs SET target_id = ?, started_at = ?, finished_at = ? WHERE id = ?",
                        (target_ids[name], _ts(start), _ts(end), run_id))  # fmt: skip
            con.execute("DELETE FROM telemetry WHERE run_id = ?", (run_id,))  # replaced by this slot's readings
        elif kind == "load":
            first = _first_load(con)
            cur = con.execute(f"INSERT INTO runs ({', '.join(run_cols)}) SELECT kind, ?, ?, status, ?, ?, host, "
                              "versions, config, error FROM runs WHERE id = ?",
                              (target_ids[name], f"load-{i}", _ts(start), _ts(end), first))  # fmt: skip
            run_id = int(cur.lastrowid or 0)
            _clone_load(con, first, run_id)
        else:
            config = {"tasks": list(EVAL_TASKS) if kind.startswith("eval") else [kind], "limit": per_run_samples}
            cur = con.execute(f"INSERT INTO runs ({', '.join(run_cols)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                "eval" if failed else kind, target_ids[name], f"nightly-{i}", "failed" if failed else "completed",
                _ts(start), _ts(end), HOST, versions, json.dumps(config),
                "BackendError: out of memory while loading the model. Fix: use --dtype bfloat16" if failed else None,
            ))  # fmt: skip
            run_id = int(cur.lastrowid or 0)
        sample_rows: list[tuple[Any, ...]] = []
        metric_rows: list[tuple[Any, ...]] = []
        if kind == "eval":
            _eval_run(rng, run_id, spec, per_run_samples, start, span_s, sample_rows, metric_rows)
        elif kind == "safety":
            _safety_run(rng, run_id, spec, per_run_samples, start, span_s, sample_rows, metric_rows)
        elif kind == "redteam":
            _redteam_run(rng, run_id, metric_rows)
        counts["samples"] += _insert(con, "samples", SAMPLE_COLS, sample_rows)
        counts["metrics"] += _insert(con, "metrics", METRIC_COLS, metric_rows)
        ticks = per_run_ticks // 20 if failed else per_run_ticks
        counts["telemetry"] += _insert(con, "telemetry", TELEMETRY_COLS,
                                       _run_telemetry(rng, run_id, spec, start, ticks, every))  # fmt: skip
        counts["runs"] += 1
    counts["telemetry"] += _insert(con, "telemetry", TELEMETRY_COLS, _monitor_telemetry(rng, now, monitor_rows))
    con.commit()
    timings["insert_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for _, sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.commit()
    con.close()
    timings["index_s"] = time.perf_counter() - clock
    _alerts(url, runs, now)
    clock = time.perf_counter()
    keep = timedelta(days=days + 3650)  # keep every raw reading: the pages must cope with all of them
    with session_scope(get_engine(url)) as s:
        counts.update(rollup_telemetry(s, now=now, raw_retention=keep, minute_retention=keep))
    timings["rollup_s"] = time.perf_counter() - clock
    with sqlite3.connect(path) as con:
        con.execute("ANALYZE")
    dispose_engines()
    return {"counts": counts, "timings": timings, "built_at": now.isoformat()}


def _first_load(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT run_id FROM load_requests ORDER BY id LIMIT 1").fetchone()
    return int(row[0])
