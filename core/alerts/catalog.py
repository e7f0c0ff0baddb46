"""Rules in the database: to and from rows, built-in defaults, rules from the config file.

Rows live in ``alert_rules`` (see :mod:`gemmawatch.storage.models.alert` for
the columns). ``source`` says who defined a rule: ``default`` (seeded from
:data:`~gemmawatch.alerts.defaults.DEFAULT_RULES`), ``config``
(``gemmawatch.yaml``) or ``user`` (the dashboard, or :func:`save_rule`). A
config or user rule may reuse a default's name to override it; re-seeding then
leaves it alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gemmawatch.alerts.config import AnyRule
from gemmawatch.alerts.defaults import DEFAULT_RULES
from gemmawatch.alerts.regression import RegressionRule
from gemmawatch.alerts.window import WindowRule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_COMMON = ("name", "severity", "description", "target", "for_s", "notify", "enabled")


def rule_fields(rule: AnyRule) -> dict[str, Any]:
    """The ``upsert_rule`` keyword arguments of a rule (all but ``source``)."""
    fields: dict[str, Any] = {
        "name": rule.name,
        "severity": rule.severity,
        "description": rule.description,
        "target": rule.target,
        "for_s": rule.for_s,
        "notify": list(rule.notify),
        "enabled": rule.enabled,
        "metric": rule.metric,
    }
    if isinstance(rule, RegressionRule):
        fields.update(
            kind="regression",
            data_source="run",
            task=rule.task,
            comparator=">",
            threshold=rule.max_drop,
            baseline=rule.baseline,
            alpha=rule.alpha,
            higher_is_better=rule.higher_is_better,
        )
    elif isinstance(rule, WindowRule):
        fields.update(
            kind="threshold",
            data_source="telemetry",
            comparator=rule.comparator,
            threshold=rule.threshold,
            labels=dict(rule.labels),
            group_by=None if rule.group_by is None else list(rule.group_by),
            aggregation=rule.aggregation,
            window_s=rule.window_s,
        )
    else:
        fields.update(
            kind="threshold", data_source="run", task=rule.task, comparator=rule.comparator, threshold=rule.threshold
        )
    return fields


def rule_from_row(row: Mapping[str, Any]) -> AnyRule:
    """Rebuild a rule from its ``alert_rules`` row.

    Raises:
        ValueError: The row is not a valid rule (pydantic's ValidationError
            is a ValueError), or its kind/data source is unknown.
    """
    raw: dict[str, Any] = {k: row[k] for k in _COMMON if row.get(k) is not None}
    raw["metric"] = row.get("metric")
    kind, data_source = row.get("kind", "threshold"), row.get("data_source") or "run"
    if kind == "regression":
        raw.update(kind="regression", task=row.get("task"), max_drop=row.get("threshold"))
        raw.update({k: row[k] for k in ("baseline", "alpha", "higher_is_better") if row.get(k) is not None})
        return RegressionRule.model_validate(raw)
    if kind != "threshold":
        raise ValueError(f"unknown rule kind {kind!r}")
    raw.update(comparator=row.get("comparator"), threshold=row.get("threshold"))
    if data_source == "telemetry":
        raw.update(source="telemetry", labels=row.get("labels") or {}, group_by=row.get("group_by"))
        raw.update({k: row[k] for k in ("aggregation", "window_s") if row.get(k) is not None})
        return WindowRule.model_validate(raw)
    if data_source != "run":
        raise ValueError(f"unknown data source {data_source!r}")
    if row.get("task") is not None:
        raw["task"] = row["task"]
    from gemmawatch.alerts.rules import ThresholdRule

    return ThresholdRule.model_validate(raw)


def save_rule(session: Session, rule: AnyRule, *, source: str = "user", enabled: bool | None = None) -> int:
    """Store (create or replace) a validated rule; returns its id."""
    from gemmawatch.storage.queries.alert_rules import upsert_rule

    fields = rule_fields(rule)
    if enabled is not None:
        fields["enabled"] = enabled
    return upsert_rule(session, source=source, **fields)


def seed_default_rules(session: Session, rules: Iterable[AnyRule] = DEFAULT_RULES) -> list[int]:
    """Insert or refresh the built-in rules (``source="default"``); idempotent.

    A rule the user disabled stays disabled, and a rule of the same name that
    came from the config file or the user is left alone (it overrides the
    default). Returns the ids of the rules written.
    """
    from gemmawatch.storage.queries.alert_rules import list_rules

    existing = {r["name"]: r for r in list_rules(session)}
    ids = []
    for rule in rules:
        prev = existing.get(rule.name)
        if prev is not None and prev.get("source", "default") != "default":
            continue
        enabled = bool(prev["enabled"]) if prev is not None else rule.enabled
        ids.append(save_rule(session, rule, source="default", enabled=enabled))
    return ids


def sync_config_rules(session: Session, rules: Iterable[AnyRule]) -> list[int]:
    """Upsert rules parsed from ``gemmawatch.yaml`` (``source="config"``); returns their ids.

    A config rule may reuse a default rule's name to change it; its
    ``enabled:`` (default true) is applied on every sync.
    """
    return [save_rule(session, rule, source="config") for rule in rules]


def stored_rules(session: Session, *, enabled_only: bool = True) -> list[tuple[int, AnyRule]]:
    """``(id, rule)`` of the stored rules; an invalid row (edited by hand) is logged and skipped."""
    from gemmawatch.storage.queries.alert_rules import list_rules

    out: list[tuple[int, AnyRule]] = []
    for row in list_rules(session, enabled_only=enabled_only):
        try:
            rule = rule_from_row(row)
        except ValidationError as exc:
            log.warning("skipping invalid alert rule %r: %s", row.get("name"), exc.errors()[0]["msg"])
            continue
        except ValueError as exc:  # a kind or source this version does not know (written by a newer one)
            log.warning("skipping alert rule %r: %s", row.get("name"), exc)
            continue
        out.append((int(row["id"]), rule))
    return out


def rules_from_db(session: Session, *, enabled_only: bool = True) -> list[AnyRule]:
    """The stored rules as rule objects (invalid rows are logged and skipped)."""
    return [rule for _, rule in stored_rules(session, enabled_only=enabled_only)]
