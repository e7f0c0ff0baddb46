"""A database for report tests: the dashboard fixtures' eval, safety and alert data, plus one run whose
outputs try to inject markup and whose target names an API key variable (set in the environment).

Everything goes through ``gemmawatch.storage.queries`` (as tests/dashboard_fixtures.py does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from dashboard_fixtures import populate, populate_alerts, populate_safety

from gemmawatch.dashboard.report_pdf import find_chromium
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries.metrics import add_metrics
from gemmawatch.storage.queries.runs import create_run, finish_run
from gemmawatch.storage.queries.samples import add_samples
from gemmawatch.storage.queries.targets import upsert_target

#: Model outputs that would run script if the report ever wrote them as markup; each sets window.__pwned.
HOSTILE_OUTPUTS = [
    "<script>window.__pwned = 'script'; alert('script')</script>",
    "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">",
    "<a href=\"javascript:window.__pwned = 'link'; alert('link')\">click me</a>",
]
#: The target's key lives in this variable; its value must never reach a report.
API_KEY_ENV = "GW_REPORT_TEST_API_KEY"
API_KEY = "sk-report-test-0123456789abcdef"
#: The secret part of the Apprise receiver URL populate_alerts stores.
RECEIVER_SECRET = "s3cr3t"


@dataclass(frozen=True)
class ReportPopulated:
    """Run ids, in the order a report of all of them takes."""

    eval_runs: list[int]
    safety_runs: list[int]
    hostile_run: int

    @property
    def all_runs(self) -> list[int]:
        return [*self.eval_runs, *self.safety_runs, self.hostile_run]


def populate_report(url: str) -> ReportPopulated:
    """Two eval runs, two safety runs (the second regresses), alerts with a secret receiver, a hostile run."""
    base = populate(url)
    safety = populate_safety(url)
    populate_alerts(url)
    with session_scope(get_engine(url)) as s:
        target_id = upsert_target(
            s, name="gemma-api", backend="openai", model_id="gemma-3-27b-it",
            options={"base_url": "http://127.0.0.1:9/v1", "api_key_env": API_KEY_ENV},
        )  # fmt: skip
        run_id = create_run(s, kind="eval", target_id=target_id, host="test-host", label="hostile",
                            config={"api_key_env": API_KEY_ENV}, versions={})  # fmt: skip
        add_samples(s, run_id, [
            {"task": "smoke_gen", "doc_id": i, "prompt": f"Say {out}", "output": out, "target": "x",
             "scores": {"exact_match": 0.0}, "latency_s": 0.1, "error": None}
            for i, out in enumerate(HOSTILE_OUTPUTS)
        ])  # fmt: skip
        add_metrics(s, run_id, [
            {"task": "smoke_gen", "metric": "exact_match", "filter": "none", "value": 0.0, "n": 3,
             "ci_low": 0.0, "ci_high": 0.56, "higher_is_better": True, "producer": "test", "producer_version": "0"},
        ])  # fmt: skip
        finish_run(s, run_id, status="completed")
    return ReportPopulated(
        eval_runs=list(base.run_ids.values()), safety_runs=[safety.base_run, safety.cand_run], hostile_run=run_id
    )


def require_chromium() -> str:
    """The Chromium binary; like the dashboard browser test: fail with the install line, or skip when
    ``GEMMAWATCH_SKIP_BROWSER=1``."""
    found = find_chromium()
    if found:
        return found
    if os.environ.get("GEMMAWATCH_SKIP_BROWSER") == "1":
        pytest.skip("Chromium is not installed and GEMMAWATCH_SKIP_BROWSER=1")
    pytest.fail("Chromium is not installed: run `apt-get install -y chromium`, or set GEMMAWATCH_SKIP_BROWSER=1",
                pytrace=False)  # fmt: skip
