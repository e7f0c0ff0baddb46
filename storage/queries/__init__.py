"""Query functions over the gemmawatch schema, one module per aggregate.

Every function takes the session first; read functions return plain dicts
(never ORM objects) with aware-UTC datetimes, so callers can cache and pickle
them. Write functions flush but never commit: use
:func:`gemmawatch.storage.session_scope` around them.
"""

from gemmawatch.storage.queries import alerts, load, metrics, runs, samples, targets, telemetry
from gemmawatch.storage.queries.alerts import (
    acknowledge_alert,
    fire_alert,
    list_alerts,
    list_rules,
    resolve_alert,
    upsert_rule,
)
from gemmawatch.storage.queries.load import add_load_requests, load_requests, load_steps
from gemmawatch.storage.queries.metrics import add_metrics, metrics_for_runs
from gemmawatch.storage.queries.runs import create_run, delete_run, finish_run, list_runs, run_summary
from gemmawatch.storage.queries.samples import add_samples, count_samples, list_samples, rate_sample, tasks_for_run
from gemmawatch.storage.queries.targets import get_target, list_targets, upsert_target
from gemmawatch.storage.queries.telemetry import add_telemetry, telemetry_for_run, telemetry_summary

__all__ = [
    "acknowledge_alert",
    "add_load_requests",
    "add_metrics",
    "add_samples",
    "add_telemetry",
    "alerts",
    "count_samples",
    "create_run",
    "delete_run",
    "finish_run",
    "fire_alert",
    "get_target",
    "list_alerts",
    "list_rules",
    "list_runs",
    "list_samples",
    "list_targets",
    "load",
    "load_requests",
    "load_steps",
    "metrics",
    "metrics_for_runs",
    "rate_sample",
    "resolve_alert",
    "run_summary",
    "runs",
    "samples",
    "targets",
    "tasks_for_run",
    "telemetry",
    "telemetry_for_run",
    "telemetry_summary",
    "upsert_rule",
    "upsert_target",
]
