"""``gemmawatch alerts test-notify URL``: check that a notification receiver works.

Registered on the ``alerts`` sub-app (commands_alerts.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import typer

from gemmawatch.cli.options import JsonOption, print_json
from gemmawatch.errors import CheckFailedError, UserError


@contextlib.contextmanager
def _quiet_library_logs() -> Iterator[None]:
    """Without --verbose, the outcome line is the only message: Apprise's and our warnings repeat it."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    apprise_log, notify_log = logging.getLogger("apprise"), logging.getLogger("gemmawatch.alerts.notify")
    propagate, level = apprise_log.propagate, notify_log.level
    # Apprise must still log at WARNING (its per-call capture gives us the reason): stop propagation only.
    apprise_log.propagate = False
    notify_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        apprise_log.propagate = propagate
        notify_log.setLevel(level)


def test_notify(
    url: str = typer.Argument(
        ...,
        help="Apprise URL (slack://..., msteams://..., mailtos://..., json://host:port/path); "
        "${NAME} is read from the environment.",
    ),
    attempts: int = typer.Option(3, "--attempts", min=1, max=10, help="Sends tried before giving up."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Connect/read timeout per attempt, seconds."),
    json_out: bool = JsonOption,
) -> None:
    """Send one test notification. Exit 0 delivered, 1 not delivered, 2 invalid URL."""
    from gemmawatch.alerts.notify import AppriseNotifier, send_test_notification

    notifier = AppriseNotifier(attempts=attempts, timeout_s=timeout)
    with _quiet_library_logs():
        delivery = send_test_notification(notifier, url)
    if json_out:
        print_json(delivery.to_dict())
    elif delivery.ok:
        typer.echo(f"delivered to {delivery.url} (attempt {delivery.attempts})")
    if delivery.ok:
        return
    error = delivery.error or f"notification to {delivery.url} failed. Fix: run again with --verbose"
    if delivery.attempts == 0:  # never sent: the URL (or a variable it names) is wrong
        raise UserError(error)
    raise CheckFailedError(error)
