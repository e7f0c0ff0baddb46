"""Evaluating the stored rules: after every run, and on every monitor tick.

* :func:`evaluate_run` (called after a run is stored): threshold rules on the
  run's metrics and telemetry summary, and regression rules against the run's
  baseline. One series per target (``target=<name>``).
* :func:`evaluate_series` (called by ``gemmawatch monitor`` after each tick):
  telemetry-window rules over the readings in ``[now - window, now]``, one
  series per distinct ``group_by`` value (see :mod:`gemmawatch.alerts.window`).

Both evaluate every enabled rule of their kind, apply the state machine of
:mod:`gemmawatch.alerts.state` inside the caller's transaction, and send the
notifications once that transaction commits (:mod:`gemmawatch.alerts.dispatch`).
Pass ``notifications`` (the config's per-severity URLs) to route by severity
and ``notifier`` to replace Apprise (tests). Rules must be in the database:
call :func:`seed_default_rules` and :func:`sync_config_rules` first.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from gemmawatch.alerts.catalog import rules_from_db, seed_default_rules, stored_rules, sync_config_rules
from gemmawatch.alerts.dispatch import schedule
from gemmawatch.alerts.facts import RunFacts, gather_facts
from gemmawatch.alerts.regression import RegressionRule, paired_test, standard_error, z_test
from gemmawatch.alerts.rules import Evaluation
from gemmawatch.alerts.state import Notice, Routes, Subject, apply
from gemmawatch.alerts.window import WindowRule, group_series

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gemmawatch.alerts.notify import Notifier

__all__ = [
    "evaluate_regression",
    "evaluate_run",
    "evaluate_series",
    "rules_from_db",
    "seed_default_rules",
    "sync_config_rules",
]

log = logging.getLogger(__name__)


def _now(now: datetime | None) -> datetime:
    from gemmawatch.storage.models import as_utc, utcnow

    return utcnow() if now is None else as_utc(now)


def evaluate_regression(session: Session, rule: RegressionRule, facts: RunFacts) -> Evaluation | None:
    """Judge a regression rule on one run; None without the metric or a baseline (no data)."""
    from gemmawatch.storage.queries import baselines as bq

    if not rule.applies_to(facts.target):
        return None
    current = facts.metrics.get((rule.task, rule.metric))
    if current is None:
        return None
    mode, ref = rule.baseline_ref
    base_id = bq.baseline_run(session, facts.run_id, mode=mode, ref=ref, task=rule.task, metric=rule.metric)
    if base_id is None:
        return None
    base_row = bq.metric_row(session, base_id, rule.task, rule.metric)
    if base_row is None or base_row["value"] is None or not math.isfinite(base_row["value"]):
        return None
    cur_row = bq.metric_row(session, facts.run_id, rule.task, rule.metric)
    cur_scores = bq.sample_scores(session, facts.run_id, rule.task, rule.metric)
    base_scores = bq.sample_scores(session, base_id, rule.task, rule.metric)
    common = sorted(cur_scores.keys() & base_scores.keys())
    if common:
        significance = paired_test([(base_scores[d], cur_scores[d]) for d in common])
    else:
        significance = z_test(current - base_row["value"], standard_error(cur_row), standard_error(base_row))
    stored_hib = (cur_row or {}).get("higher_is_better")
    if stored_hib is None:
        stored_hib = base_row.get("higher_is_better")
    return rule.judge(
        current=current,
        baseline=float(base_row["value"]),
        baseline_run=base_id,
        higher_is_better=stored_hib,
        significance=significance,
    )


def evaluate_run(
    session: Session,
    run_id: int,
    *,
    now: datetime | None = None,
    notifications: Routes | None = None,
    notifier: Notifier | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every enabled run rule (threshold and regression) on one run.

    Per rule, for the run's target: a breach opens or refreshes an alert
    (pending first when the rule has a ``for``), a value within the threshold
    resolves the open alert, no data changes nothing.

    Returns:
        One dict per breached evaluation and per alert resolved (see
        :func:`gemmawatch.alerts.state.apply`): keys rule, severity, state
        (``pending``/``firing``/``resolved``), from_state, value, message (one
        line naming value, threshold and run), alert_id, new (False when the
        alert was already in that state), series, target, notify.

    Raises:
        UnknownNameError: No run has this id.
    """
    from gemmawatch.storage.queries.alerts import target_series

    at = _now(now)
    facts = gather_facts(session, run_id)
    series = target_series(facts.target)
    transitions: list[dict[str, Any]] = []
    notices: list[Notice] = []
    for rule_id, rule in stored_rules(session, enabled_only=True):
        if isinstance(rule, WindowRule):
            continue
        ev = evaluate_regression(session, rule, facts) if isinstance(rule, RegressionRule) else rule.evaluate(facts)
        if ev is None:
            continue
        subject = Subject(rule_id, rule, series, facts.target, facts.target_id, run_id)
        transition, notice = apply(session, subject, ev, now=at, routes=notifications)
        if transition is not None:
            transitions.append(transition)
        if notice is not None:
            notices.append(notice)
    schedule(session, notices, notifier)
    return transitions


def evaluate_series(
    session: Session,
    *,
    now: datetime,
    host: str | None = None,
    notifications: Routes | None = None,
    notifier: Notifier | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every enabled telemetry-window rule at ``now`` (readings of ``host`` only, if given).

    Returns:
        The transitions, as :func:`evaluate_run` (``target`` is the series'
        ``target`` label, when it has one).
    """
    from gemmawatch.storage.queries.targets import get_target
    from gemmawatch.storage.queries.telemetry import telemetry_window_rows

    at = _now(now)
    target_ids: dict[str, int | None] = {}

    def target_id(name: str | None) -> int | None:
        if name is None:
            return None
        if name not in target_ids:
            row = get_target(session, name)
            target_ids[name] = None if row is None else int(row["id"])
        return target_ids[name]

    transitions: list[dict[str, Any]] = []
    notices: list[Notice] = []
    for rule_id, rule in stored_rules(session, enabled_only=True):
        if not isinstance(rule, WindowRule):
            continue
        rows = telemetry_window_rows(
            session,
            metric=rule.metric,
            start=at - timedelta(seconds=rule.window_s),
            end=at,
            target=rule.target,
            host=host,
            labels=rule.labels,
        )
        last_run: dict[str, int | None] = {}
        for key, (labels, points) in group_series(rows, rule.series_by, runs=last_run).items():
            ev = rule.evaluate_points(points, series=key)
            if ev is None:
                continue
            name = labels.get("target")
            subject = Subject(rule_id, rule, key, name, target_id(name), last_run.get(key))
            transition, notice = apply(session, subject, ev, now=at, routes=notifications)
            if transition is not None:
                transitions.append(transition)
            if notice is not None:
                notices.append(notice)
    schedule(session, notices, notifier)
    return transitions
