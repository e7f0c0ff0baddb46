"""Alert evaluation over stored series, through the alert engine's ``evaluate_series``.

The monitor calls ``evaluate_series(session, now=..., host=...)`` after a write
(the engine evaluates every telemetry-window rule, such as ``endpoint-down`` on
``probe.up``, and returns the transitions). The function is looked up when the
monitor starts, so an engine without it (older installation) only disables
alerting, with one warning. :class:`FiringSet` turns transitions into the
``alerts_firing`` gauge.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

__all__ = ["FiringSet", "Routes", "SeriesEvaluator", "parse_alerting", "seed_rules", "series_evaluator", "with_routes"]

#: Severity -> notification URLs (the ``notifications:`` section).
Routes = Mapping[str, Sequence[str]]


class SeriesEvaluator(Protocol):
    """``gemmawatch.alerts.engine.evaluate_series``'s signature."""

    def __call__(self, session: Session, *, now: datetime, host: str) -> list[dict[str, Any]]: ...


def series_evaluator() -> SeriesEvaluator | None:
    """The alert engine's ``evaluate_series``, or None (logged) when this installation has none."""
    engine = importlib.import_module("gemmawatch.alerts.engine")
    evaluate: SeriesEvaluator | None = getattr(engine, "evaluate_series", None)
    if evaluate is None:
        log.warning("the alert engine has no evaluate_series; the monitor stores data but evaluates no alerts")
    return evaluate


def parse_alerting(rules: Sequence[Any], notifications: Mapping[str, Any], *, source: str) -> tuple[list[Any], Routes]:
    """The config's extra rules and notification routes, validated by the alert engine's own parsers."""
    from gemmawatch.alerts.config import parse_alert_rules

    routes: Routes = {}
    if notifications:
        from gemmawatch.alerts.config import parse_notifications

        routes = parse_notifications(dict(notifications), source=source)
    return parse_alert_rules(list(rules), source=source), routes


def seed_rules(session: Session, rules: Sequence[Any] = ()) -> None:
    """Make sure the built-in rules (``endpoint-down`` among them) and the config's ``rules`` are stored."""
    from gemmawatch.alerts.engine import seed_default_rules, sync_config_rules

    seed_default_rules(session)
    if rules:
        sync_config_rules(session, rules)


def with_routes(evaluate: SeriesEvaluator, routes: Routes) -> SeriesEvaluator:
    """``evaluate`` sending notifications to the per-severity ``routes`` (unchanged without routes)."""
    if not routes:
        return evaluate
    full: Callable[..., list[dict[str, Any]]] = evaluate  # evaluate_series takes notifications=

    def evaluate_routed(session: Session, *, now: datetime, host: str) -> list[dict[str, Any]]:
        return full(session, now=now, host=host, notifications=routes)

    return evaluate_routed


class FiringSet:
    """Alert ids seen firing and not yet seen resolved (by this monitor's evaluations)."""

    def __init__(self) -> None:
        self._firing: set[Any] = set()

    def update(self, transitions: Iterable[Mapping[str, Any]]) -> int:
        """Apply transitions (``state`` firing/resolved, ``alert_id``); returns how many fire now."""
        for t in transitions:
            key = t.get("alert_id", (t.get("rule"), str(t.get("labels"))))
            if t.get("state") == "firing":
                self._firing.add(key)
            elif t.get("state") == "resolved":
                self._firing.discard(key)
        return len(self._firing)

    def __len__(self) -> int:
        return len(self._firing)
