"""Sending alert notifications after the transitions are committed, and storing the outcome.

The engine evaluates inside its caller's transaction (``session_scope``), so
it cannot commit first and notify next. Instead :func:`schedule` parks the
:class:`~gemmawatch.alerts.state.Notice` objects on the session and hooks its
``after_commit`` event: once the caller's transaction commits, each notice is
sent through the :class:`~gemmawatch.alerts.notify.Notifier` (the injected
one, else :class:`~gemmawatch.alerts.notify.AppriseNotifier`) and its
deliveries are stored in ``notifications`` in a new transaction. A rollback
drops the notices: nothing is announced that was not stored.

Nothing here raises: a notifier that raises, a missing Apprise or a failing
write of the outcome is logged, and the failure is stored as deliveries with
``ok=False`` when the database allows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gemmawatch.alerts.state import Notice
from gemmawatch.errors import one_line

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from gemmawatch.alerts.notify import Notifier

log = logging.getLogger(__name__)

_QUEUE = "gemmawatch.alerts.notices"
_HOOKED = "gemmawatch.alerts.notices.hooked"


@dataclass(frozen=True)
class FailedDelivery:
    """Stands in for a ``Delivery`` when the notifier itself failed (it should never raise)."""

    url: str
    error: str
    ok: bool = False
    attempts: int = 0
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _redact(url: str) -> str:
    from gemmawatch.alerts.notify import redact_url

    return redact_url(url)


def schedule(session: Session, notices: Sequence[Notice], notifier: Notifier | None = None) -> None:
    """Send ``notices`` once ``session``'s current transaction commits (dropped on rollback)."""
    if not notices:
        return
    from sqlalchemy import event

    queue: list[tuple[Notice, Notifier | None]] = session.info.setdefault(_QUEUE, [])
    queue.extend((n, notifier) for n in notices)
    if not session.info.get(_HOOKED):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_HOOKED] = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_QUEUE, None)


def _after_commit(session: Session) -> None:
    queue = session.info.pop(_QUEUE, None)
    if not queue:
        return
    try:
        bind: Any = session.get_bind()
        engine = getattr(bind, "engine", bind)  # a Connection knows its engine
        deliver(engine, queue)
    except Exception:  # never let a notification problem fail the caller's commit
        log.exception("sending alert notifications failed")


def deliver(engine: Engine, queue: Sequence[tuple[Notice, Notifier | None]]) -> None:
    """Send each notice and store its deliveries (one short transaction per notice)."""
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries.alerts import record_deliveries

    default: list[Notifier] = []
    for notice, notifier in queue:
        deliveries = _send(notice, notifier, default)
        try:
            with session_scope(engine) as s:
                record_deliveries(s, notice.alert_id, notice.transition, deliveries)
        except Exception as exc:
            log.warning("could not store the notifications of alert %s: %s", notice.alert_id, one_line(str(exc)))


def _send(notice: Notice, notifier: Notifier | None, default: list[Notifier]) -> Sequence[Any]:
    try:
        from gemmawatch.alerts.notify import AppriseNotifier, notify_transition

        if notifier is None:
            if not default:
                default.append(AppriseNotifier())
            notifier = default[0]
        return notify_transition(
            notifier,
            notice.urls,
            rule=notice.rule,
            state=notice.transition,
            severity=notice.severity,
            value=notice.value,
            message=notice.message,
            target=notice.target,
        )
    except Exception as exc:
        error = one_line(f"notifier failed: {type(exc).__name__}: {exc}")
        for url in notice.urls:  # the exception may quote a URL with its secrets
            error = error.replace(url, _safe_redact(url))
        log.warning("alert %s (%s): %s", notice.alert_id, notice.transition, error)
        return [FailedDelivery(url=_safe_redact(u), error=error) for u in notice.urls]


def _safe_redact(url: str) -> str:
    try:
        return _redact(url)
    except Exception:  # the notifier module itself is broken: keep only the scheme
        return url.split("://", 1)[0] + "://***"
