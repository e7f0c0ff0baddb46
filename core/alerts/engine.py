"""Evaluating rules against stored runs and recording alert transitions."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gemmawatch.alerts.defaults import DEFAULT_RULES
from gemmawatch.alerts.facts import gather_facts
from gemmawatch.alerts.rules import ThresholdRule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def _upsert(session: Session, rule: ThresholdRule, *, source: str, enabled: bool) -> int:
    from gemmawatch.storage.queries.alerts import upsert_rule

    return upsert_rule(
        session,
        name=rule.name,
        kind=rule.kind,
        metric=rule.metric,
        comparator=rule.comparator,
        threshold=rule.threshold,
        severity=rule.severity,
        task=rule.task,
        enabled=enabled,
        description=rule.description,
        source=source,
    )


def seed_default_rules(session: Session, rules: Iterable[ThresholdRule] = DEFAULT_RULES) -> list[int]:
    """Insert or refresh the built-in rules (``source="default"``); idempotent.

    A rule the user disabled stays disabled, and a rule of the same name that
    came from the config file or the user is left alone (it overrides the
    default). Returns the ids of the rules written.
    """
    from gemmawatch.storage.queries.alerts import list_rules

    existing = {r["name"]: r for r in list_rules(session)}
    ids = []
    for rule in rules:
        prev = existing.get(rule.name)
        if prev is not None and prev.get("source", "default") != "default":
            continue
        enabled = bool(prev["enabled"]) if prev is not None else True
        ids.append(_upsert(session, rule, source="default", enabled=enabled))
    return ids


def sync_config_rules(session: Session, rules: Iterable[ThresholdRule]) -> list[int]:
    """Upsert rules parsed from ``gemmawatch.yaml`` (``source="config"``); returns their ids.

    A config rule may reuse a default rule's name to change its threshold.
    """
    return [_upsert(session, rule, source="config", enabled=True) for rule in rules]


def _rules_with_ids(session: Session, *, enabled_only: bool) -> list[tuple[int, ThresholdRule]]:
    from gemmawatch.storage.queries.alerts import list_rules

    out = []
    for row in list_rules(session, enabled_only=enabled_only):
        if row.get("kind", "threshold") != "threshold":
            continue  # a kind this version cannot evaluate (written by a newer one)
        fields = ("name", "metric", "comparator", "threshold", "severity", "task", "description")
        try:
            rule = ThresholdRule.model_validate({k: row[k] for k in fields if row.get(k) is not None})
        except ValidationError as exc:
            # One bad row (edited by hand) must not stop every other rule.
            log.warning("skipping invalid alert rule %r: %s", row.get("name"), exc.errors()[0]["msg"])
            continue
        out.append((int(row["id"]), rule))
    return out


def rules_from_db(session: Session, *, enabled_only: bool = True) -> list[ThresholdRule]:
    """The stored rules as :class:`ThresholdRule` objects (invalid rows are logged and skipped)."""
    return [rule for _, rule in _rules_with_ids(session, enabled_only=enabled_only)]


def evaluate_run(session: Session, run_id: int) -> list[dict[str, Any]]:
    """Evaluate every enabled rule on one run and update the alerts table.

    Per rule: a breach fires an alert (one firing alert per rule and target:
    a repeat breach updates it); a value within the threshold resolves the
    rule's firing alert for that target, if any; no data changes nothing.

    Returns:
        One dict per firing evaluation and per alert actually resolved, with
        keys ``rule``, ``severity``, ``state`` (``"firing"``/``"resolved"``),
        ``value``, ``message`` (one line naming value, threshold and run),
        ``alert_id`` and ``new`` (False when the alert was already firing).
    """
    from gemmawatch.storage.queries.alerts import fire_alert, firing_alert_id, resolve_alert

    facts = gather_facts(session, run_id)
    transitions: list[dict[str, Any]] = []
    for rule_id, rule in _rules_with_ids(session, enabled_only=True):
        ev = rule.evaluate(facts)
        if ev is None:
            continue
        message = ev.message(run_id)
        base = {"rule": rule.name, "severity": rule.severity, "value": ev.value, "message": message}
        if ev.breached:
            new = firing_alert_id(session, rule_id=rule_id, target_id=facts.target_id) is None
            alert_id = fire_alert(
                session, rule_id=rule_id, run_id=run_id, target_id=facts.target_id, value=ev.value, message=message
            )
            transitions.append({**base, "state": "firing", "alert_id": alert_id, "new": new})
        else:
            resolved = resolve_alert(session, rule_id=rule_id, target_id=facts.target_id, value=ev.value)
            if resolved is not None:
                transitions.append({**base, "state": "resolved", "alert_id": resolved, "new": True})
    return transitions
