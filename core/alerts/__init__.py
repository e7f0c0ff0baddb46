"""Alerts: rules over runs and telemetry, a pending/firing/resolved state machine, notifications.

* Rules (:mod:`~gemmawatch.alerts.rules`, :mod:`~gemmawatch.alerts.window`,
  :mod:`~gemmawatch.alerts.regression`): thresholds on a run's metrics,
  thresholds on telemetry windows, regressions against a baseline run.
  They come from :data:`DEFAULT_RULES`, ``gemmawatch.yaml``
  (:func:`parse_alert_rules`) or users, and live in the database
  (:mod:`~gemmawatch.alerts.catalog`).
* The engine (:func:`evaluate_run` after every run, :func:`evaluate_series`
  on every monitor tick) records transitions through
  ``gemmawatch.storage.queries.alerts`` (:mod:`~gemmawatch.alerts.state`) and
  notifies after the commit (:mod:`~gemmawatch.alerts.dispatch`,
  :mod:`~gemmawatch.alerts.notify`).
"""

from __future__ import annotations

from gemmawatch.alerts.catalog import rule_from_row, rules_from_db, save_rule, seed_default_rules, sync_config_rules
from gemmawatch.alerts.config import AnyRule, parse_alert_rules, parse_notifications
from gemmawatch.alerts.defaults import DEFAULT_RULES
from gemmawatch.alerts.durations import format_duration, parse_duration
from gemmawatch.alerts.engine import evaluate_run, evaluate_series
from gemmawatch.alerts.facts import RunFacts, TelemetryStat, facts_from_rows, gather_facts
from gemmawatch.alerts.regression import RegressionRule
from gemmawatch.alerts.rules import COMPARE, AlertRule, Evaluation, ThresholdRule
from gemmawatch.alerts.window import AGGREGATIONS, WindowRule, aggregate

__all__ = [
    "AGGREGATIONS",
    "COMPARE",
    "DEFAULT_RULES",
    "AlertRule",
    "AnyRule",
    "Evaluation",
    "RegressionRule",
    "RunFacts",
    "TelemetryStat",
    "ThresholdRule",
    "WindowRule",
    "aggregate",
    "evaluate_run",
    "evaluate_series",
    "facts_from_rows",
    "format_duration",
    "gather_facts",
    "parse_alert_rules",
    "parse_duration",
    "parse_notifications",
    "rule_from_row",
    "rules_from_db",
    "save_rule",
    "seed_default_rules",
    "sync_config_rules",
]
