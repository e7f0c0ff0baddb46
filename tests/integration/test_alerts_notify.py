"""Notifications over real HTTP: Apprise json:// to a receiver on 127.0.0.1, dead receivers, the CLI."""

from __future__ import annotations

import json
from typing import Any

from cli_support import assert_user_error, gw
from notify_receiver import NotifyReceiver, dead_url

from gemmawatch.alerts.notify import AppriseNotifier, notify_transition


def fast_notifier(**kwargs: Any) -> AppriseNotifier:
    """Real Apprise, tiny backoff and timeouts."""
    return AppriseNotifier(backoff_s=(0.01,), timeout_s=2.0, **kwargs)


def test_transition_reaches_a_live_receiver_and_a_dead_one_fails() -> None:
    sleeps: list[float] = []
    notifier = fast_notifier(sleep=sleeps.append)
    with NotifyReceiver() as rx:
        dead = dead_url("hook-token-xyz")
        live, down = notify_transition(
            notifier,
            [rx.url("alerts/hook-token-abc"), dead],
            rule="endpoint-down",
            state="firing",
            severity="critical",
            value=0.0,
            message="max(probe.up) over 1m = 0 < 1 on gemma-prod",
            target="gemma-prod",
        )
        (post,) = rx.posts
    assert live.ok and live.attempts == 1 and live.error is None
    assert live.url == f"json://127.0.0.1:{rx.port}/***"
    assert post.path == "/alerts/hook-token-abc"
    body = post.body
    assert body["title"] == "[CRITICAL] firing: endpoint-down on gemma-prod"
    assert body["message"].startswith("max(probe.up) over 1m = 0 < 1 on gemma-prod\n")
    assert "severity: critical" in body["message"] and "value: 0" in body["message"]
    assert body["type"] == "failure"  # critical -> Apprise's failure type (red in chat services)

    assert not down.ok and down.attempts == 3 and sleeps == [0.01, 0.01]
    assert down.error is not None and down.url in down.error and "hook-token-xyz" not in down.error
    assert "Connection" in down.error and "Fix:" in down.error


def test_flaky_receiver_is_retried() -> None:
    with NotifyReceiver(fail_first=2) as rx:
        (d,) = fast_notifier().notify([rx.url()], title="t", body="b", severity="warning")
        assert d.ok and d.attempts == 3 and len(rx.posts) == 3
        assert rx.bodies()[-1]["type"] == "warning"


def test_receiver_answering_500_is_a_failed_delivery() -> None:
    with NotifyReceiver(fail_first=99) as rx:
        (d,) = fast_notifier(attempts=2).notify([rx.url()], title="t", body="b", severity="info")
        assert not d.ok and d.attempts == 2 and len(rx.posts) == 2
    assert d.error is not None and "500" in d.error


def test_cli_test_notify_delivered() -> None:
    with NotifyReceiver() as rx:
        proc = gw(
            "alerts", "test-notify", f"json://127.0.0.1:{rx.port}/" + "${GW_TEST_HOOK}", "--json",
            env={"GW_TEST_HOOK": "hook-s3cr3t"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        (post,) = rx.posts
    assert post.path == "/hook-s3cr3t"
    assert "test notification" in post.body["title"] and "severity: info" in post.body["message"]
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["attempts"] == 1 and out["url"] == f"json://127.0.0.1:{rx.port}/***"
    assert "s3cr3t" not in proc.stdout + proc.stderr


def test_cli_test_notify_dead_receiver_exits_1() -> None:
    url = dead_url("hook-s3cr3t")
    proc = gw("alerts", "test-notify", url, "--attempts", "2", "--timeout", "2")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "s3cr3t" not in proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()  # the outcome only; Apprise's warnings are folded into it
    shown = url.rsplit("/", 1)[0] + "/***"
    assert line.startswith(f"gemmawatch: error: notification to {shown} failed after 2 attempt(s): ")
    assert "Fix:" in line


def test_cli_test_notify_garbage_url_exits_2() -> None:
    assert_user_error(gw("alerts", "test-notify", "not-a-url"), "invalid notification URL", "Fix:")
    assert_user_error(gw("alerts", "test-notify", "slack://${GW_SURELY_UNSET_VAR}"), "GW_SURELY_UNSET_VAR")
