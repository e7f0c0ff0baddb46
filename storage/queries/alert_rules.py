"""Alert rules: create or edit, enable or disable, delete, list (also what the dashboard edits).

Only the stored form is checked here (allowed kind, data source, comparator,
aggregation, severity); the meaning of a rule (a telemetry rule needs a
window, a regression rule a baseline) is the alert engine's
(``gemmawatch.alerts``), which validates rules before storing them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.storage.models import AGGREGATIONS, COMPARATORS, DATA_SOURCES, RULE_KINDS, AlertRule, utcnow
from gemmawatch.storage.queries._rows import table_of, upsert_returning_id

#: Columns a re-upsert of an existing name replaces (id, name and created_at stay).
RULE_FIELDS = (
    "kind",
    "metric",
    "task",
    "comparator",
    "threshold",
    "severity",
    "enabled",
    "description",
    "source",
    "data_source",
    "target",
    "labels",
    "group_by",
    "aggregation",
    "window_s",
    "for_s",
    "notify",
    "baseline",
    "alpha",
    "higher_is_better",
)


def _check(name: str, field: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"Alert rule '{name}' has {field} {value!r}. Fix: use one of {', '.join(allowed)}")


def upsert_rule(
    s: Session,
    *,
    name: str,
    kind: str,
    metric: str,
    comparator: str,
    threshold: float,
    severity: str,
    task: str | None = None,
    enabled: bool = True,
    description: str = "",
    source: str = "default",
    data_source: str = "run",
    target: str | None = None,
    labels: Mapping[str, str] | None = None,
    group_by: Sequence[str] | None = None,
    aggregation: str | None = None,
    window_s: float | None = None,
    for_s: float = 0.0,
    notify: Sequence[str] = (),
    baseline: str | None = None,
    alpha: float | None = None,
    higher_is_better: bool | None = None,
) -> int:
    """Create the rule ``name`` or replace its definition; returns its id.

    ``source`` records who defined it (``default``, ``config``, ``user``).
    Regression rules store their largest tolerated drop as ``threshold``
    with comparator ``>``.

    Raises:
        ConfigError: A value outside the allowed set (one line with the fix).
    """
    _check(name, "comparator", comparator, COMPARATORS)
    _check(name, "kind", kind, RULE_KINDS)
    _check(name, "data source", data_source, DATA_SOURCES)
    if aggregation is not None:
        _check(name, "aggregation", aggregation, AGGREGATIONS)
    values = {
        "name": name,
        "kind": kind,
        "metric": metric,
        "task": task,
        "comparator": comparator,
        "threshold": float(threshold),
        "severity": severity,
        "enabled": enabled,
        "description": description,
        "source": source,
        "data_source": data_source,
        "target": target,
        "labels": dict(labels or {}),
        "group_by": list(group_by) if group_by is not None else None,
        "aggregation": aggregation,
        "window_s": None if window_s is None else float(window_s),
        "for_s": float(for_s),
        "notify": list(notify),
        "baseline": baseline,
        "alpha": None if alpha is None else float(alpha),
        "higher_is_better": higher_is_better,
        "created_at": utcnow(),
    }
    return upsert_returning_id(s, AlertRule, values, key="name", update=RULE_FIELDS)


def list_rules(s: Session, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    """All rules ordered by name, as dicts of all columns."""
    table = table_of(AlertRule)
    query = select(table).order_by(table.c.name)
    if enabled_only:
        query = query.where(table.c.enabled.is_(True))
    return [dict(row) for row in s.execute(query).mappings()]


def get_rule(s: Session, name: str) -> dict[str, Any] | None:
    """The rule ``name`` as a dict of all columns, or None."""
    table = table_of(AlertRule)
    row = s.execute(select(table).where(table.c.name == name)).mappings().first()
    return None if row is None else dict(row)


def set_rule_enabled(s: Session, name: str, enabled: bool) -> None:
    """Enable or disable the rule ``name`` (re-seeding defaults keeps this choice).

    Raises:
        UnknownNameError: No rule has this name.
    """
    result = s.execute(update(AlertRule).where(AlertRule.name == name).values(enabled=enabled))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownNameError(f"Unknown alert rule '{name}'. Fix: list rules with `gemmawatch alerts rules`")


def delete_rule(s: Session, name: str) -> bool:
    """Delete the rule ``name`` and its alerts (with their events and notifications); False if absent.

    A deleted default rule comes back at the next seeding; disable it instead
    to keep it off.
    """
    result = s.execute(delete(AlertRule).where(AlertRule.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]
