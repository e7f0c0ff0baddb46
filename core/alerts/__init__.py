"""Alerts: threshold rules over stored runs, fired and resolved in the database.

The engine reads a run's metrics and telemetry summary (:func:`gather_facts`),
asks each enabled rule for an :class:`Evaluation`, and records transitions
through ``gemmawatch.storage.queries.alerts`` (one firing alert per rule and
target). Rules come from :data:`DEFAULT_RULES`, ``gemmawatch.yaml``
(:func:`parse_alert_rules`) or users.
"""

from __future__ import annotations

from gemmawatch.alerts.config import parse_alert_rules
from gemmawatch.alerts.defaults import DEFAULT_RULES
from gemmawatch.alerts.engine import (
    evaluate_run,
    rules_from_db,
    seed_default_rules,
    sync_config_rules,
)
from gemmawatch.alerts.facts import RunFacts, TelemetryStat, facts_from_rows, gather_facts
from gemmawatch.alerts.rules import COMPARE, AlertRule, Evaluation, ThresholdRule

__all__ = [
    "COMPARE",
    "DEFAULT_RULES",
    "AlertRule",
    "Evaluation",
    "RunFacts",
    "TelemetryStat",
    "ThresholdRule",
    "evaluate_run",
    "facts_from_rows",
    "gather_facts",
    "parse_alert_rules",
    "rules_from_db",
    "seed_default_rules",
    "sync_config_rules",
]
