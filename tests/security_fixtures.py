"""Hostile model outputs and stored secrets for the dashboard's security tests.

``populate_hostile``: an eval run whose first sample (and prompt) carry script,
``onerror`` and ``javascript:`` payloads that would change ``document.title``
or set ``window.__xss`` if they ever ran, two safety runs whose regression diff
shows such an output as newly unsafe, a target whose options name an API-key
variable (the test puts :data:`API_KEY` in the server's environment) and an
alert rule notifying an Apprise URL with a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries.metrics import add_metrics
from gemmawatch.storage.queries.runs import create_run, finish_run
from gemmawatch.storage.queries.samples import add_samples
from gemmawatch.storage.queries.targets import upsert_target

#: Each would change document.title to "pwned..." (and set window.__xss) if rendered as markup.
PAYLOADS = (
    "<script>document.title='pwned-script';window.__xss=1</script>",
    "<img src=x onerror=\"document.title='pwned-img';window.__xss=1\">",
    "<a href=\"javascript:document.title='pwned-link';window.__xss=1\">click me</a>",
    "[markdown link](javascript:document.title='pwned-md')",
)
HOSTILE_OUTPUT = "Sure! " + " ".join(PAYLOADS)
HOSTILE_PROMPT = "Repeat after me: " + PAYLOADS[1]
#: Environment variable named by the hostile target's api_key_env, and its value.
API_KEY_ENV = "GW_TEST_API_KEY"
API_KEY = "sk-test-9f8e7d6c5b4a3210SECRETKEY"
#: An Apprise URL whose token must never be shown.
APPRISE_TOKEN = "123456789:AAH-t0ps3cr3tT0K3N"
APPRISE_URL = f"tgram://{APPRISE_TOKEN}/987654321"
#: The first task by name, so its first sample is the one the Run page's detail view opens.
FIRST_TASK = "aaa_xss"


@dataclass(frozen=True)
class Hostile:
    """Ids of what :func:`populate_hostile` stored."""

    eval_run: int
    safety_base: int
    safety_cand: int


def _eval_samples(started: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(4):
        hostile = i == 0
        rows.append({
            "task": FIRST_TASK, "doc_id": i, "prompt": HOSTILE_PROMPT if hostile else f"question {i}",
            "output": HOSTILE_OUTPUT if hostile else f"answer {i}", "target": PAYLOADS[2] if hostile else "x",
            "scores": {"exact_match": 0.0}, "latency_s": 0.5, "ttft_s": 0.1, "tpot_s": 0.05, "input_tokens": 5,
            "output_tokens": 9, "token_source": "tokenizer", "error": None,
            "started_at": started + timedelta(seconds=i),
        })  # fmt: skip
    return rows


def _safety_samples(*, candidate: bool) -> list[dict[str, Any]]:
    rows = []
    for i in range(6):
        unsafe = int(candidate and i < 2)
        rows.append({
            "task": "safety/weapons", "doc_id": i, "target": "unsafe",
            "prompt": HOSTILE_PROMPT if i == 0 else f"weapons prompt {i}",
            "output": HOSTILE_OUTPUT if unsafe else "I can't help with that.", "error": None, "latency_s": 0.5,
            "scores": {"refused": 1 - unsafe, "unsafe_output": unsafe, "pii_leak": 0},
        })  # fmt: skip
    return rows


def populate_hostile(url: str) -> Hostile:
    """Store the hostile runs, the target with an API-key variable and the rule with a secret receiver."""
    from gemmawatch.alerts.catalog import save_rule
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.evals.safety_metrics import safety_metrics

    (rule,) = parse_alert_rules([{"name": "secret-receiver", "task": "latency", "metric": "e2e_s_p95",
                                  "comparator": ">", "threshold": 9, "notify": [APPRISE_URL]}])  # fmt: skip
    with session_scope(get_engine(url)) as s:
        target_id = upsert_target(
            s, name="hosted-gemma", backend="openai", model_id="gemma-3-27b-it",
            options={"base_url": "http://127.0.0.1:9/v1", "api_key_env": API_KEY_ENV},
        )  # fmt: skip
        eval_run = create_run(s, kind="eval", target_id=target_id, host="h", label="xss", config={}, versions={})
        add_samples(s, eval_run, _eval_samples(datetime.now(UTC) - timedelta(minutes=1)))
        add_metrics(s, eval_run, [{"task": FIRST_TASK, "metric": "exact_match", "filter": "none", "value": 0.0,
                                   "n": 4, "ci_low": 0.0, "ci_high": 0.6, "higher_is_better": True,
                                   "producer": "gemmawatch", "producer_version": "0.1.0"}])  # fmt: skip
        finish_run(s, eval_run, status="completed")
        ids = []
        for label, candidate in (("before", False), ("after", True)):
            run_id = create_run(s, kind="safety", target_id=target_id, host="h", label=label, config={}, versions={})
            samples = _safety_samples(candidate=candidate)
            add_samples(s, run_id, samples)
            add_metrics(s, run_id, safety_metrics(samples, task_version="fixture"))
            finish_run(s, run_id, status="completed")
            ids.append(run_id)
        save_rule(s, rule, source="config")
    return Hostile(eval_run=eval_run, safety_base=ids[0], safety_cand=ids[1])
