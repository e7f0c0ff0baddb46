"""Notifications without a network: redaction, ${VAR} expansion, retries, invalid URLs, message text."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import apprise
import pytest

from gemmawatch.alerts.notify import (
    AppriseNotifier,
    Delivery,
    Notifier,
    expand_env,
    notify_transition,
    redact_url,
    transition_text,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://127.0.0.1:8123/hooks/abc?x=1", "json://127.0.0.1:8123/***"),
        ("json://127.0.0.1:8123", "json://127.0.0.1:8123"),
        ("json://127.0.0.1:8123/", "json://127.0.0.1:8123"),
        ("json://localhost/a", "json://localhost/***"),
        ("json://[::1]:8080/a", "json://[::1]:8080/***"),
        ("json://[s3cr3t]/a", "json://***"),
        ("JSON://user:hunter2@127.0.0.1/x", "json://***@127.0.0.1/***"),
        ("mailtos://me:pw@smtp.example.com:587", "mailtos://***@smtp.example.com:587"),
        ("mailtos://me:pw@smtp.example.com?to=ops@example.com", "mailtos://***@smtp.example.com/***"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/***"),
        (
            "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y",
            "https://acme.webhook.office.com/***",
        ),
        ("ntfys://ntfy.sh/secret-topic", "ntfys://ntfy.sh/***"),
        # services that put tokens where the host goes: nothing after the scheme survives
        ("slack://T1234ABCD/B5678EFGH/XXXXXXXXXXXXXXXX", "slack://***"),
        ("slack://xoxb-1234-5678-abcdef/#alerts", "slack://***"),
        ("msteams://acme/tokenA/tokenB/tokenC", "msteams://***"),
        ("pagerduty://integrationkey@apikey", "pagerduty://***"),
        ("tgram://123456789:AAHsecretbot/12345", "tgram://***"),
        ("discord://112233/webhooktoken", "discord://***"),
        ("https://example.com:notaport/x", "https://***"),
        ("json://a1b2c3.d4e5f6.g7h8i9/x", "json://***"),  # dotted token (a JWT-ish host)
        # not a URL at all: could be a pasted token
        ("garbage", "***"),
        ("sk-live-0123456789", "***"),
        ("", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_expand_env() -> None:
    env = {"HOOK": "s3cret", "HOST": "127.0.0.1"}
    assert expand_env("json://${HOST}:80/${HOOK}?a=$HOOK", env) == "json://127.0.0.1:80/s3cret?a=$HOOK"
    with pytest.raises(KeyError, match="MISSING"):
        expand_env("slack://${MISSING}", env)


class FlakyApprise:
    """Replaces ``apprise.Apprise.notify``: fails ``fail`` times (False or an exception), then succeeds."""

    def __init__(self, fail: int, *, exc: Exception | None = None) -> None:
        self.fail = fail
        self.exc = exc
        self.calls: list[dict[str, Any]] = []

    def __call__(self, apobj: apprise.Apprise, **kwargs: Any) -> bool:
        plugin = apobj[0]
        self.calls.append(
            {
                **kwargs,
                "url": plugin.url(),
                "cto": plugin.socket_connect_timeout,
                "rto": plugin.socket_read_timeout,
            }
        )
        if len(self.calls) <= self.fail:
            if self.exc is not None:
                raise self.exc
            return False
        return True


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _notifier(sleeps: list[float], **kwargs: Any) -> AppriseNotifier:
    return AppriseNotifier(sleep=sleeps.append, environ={}, **kwargs)


def _patch(monkeypatch: pytest.MonkeyPatch, fake: FlakyApprise) -> None:
    monkeypatch.setattr(apprise.Apprise, "notify", lambda self, **kw: fake(self, **kw))


URL = "json://127.0.0.1:9/hook-s3cr3t"


def test_retries_until_delivered(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    fake = FlakyApprise(fail=2)
    _patch(monkeypatch, fake)
    (d,) = _notifier(sleeps).notify([URL], title="t", body="b", severity="warning")
    assert d.ok and d.attempts == 3 and d.error is None
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls) == 3
    assert d.url == "json://127.0.0.1:9/***"
    assert d.at.tzinfo is UTC


def test_gives_up_after_attempts(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FlakyApprise(fail=99)
    _patch(monkeypatch, fake)
    with caplog.at_level(logging.WARNING, logger="gemmawatch.alerts.notify"):
        (d,) = _notifier(sleeps).notify([URL], title="t", body="b", severity="critical")
    assert not d.ok and d.attempts == 3 and len(fake.calls) == 3
    assert sleeps == [0.5, 1.0]
    assert d.error is not None
    assert d.error.startswith("notification to json://127.0.0.1:9/*** failed after 3 attempt(s): ")
    assert "Fix:" in d.error and "s3cr3t" not in d.error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "json://127.0.0.1:9/***" in warnings[0] and "s3cr3t" not in warnings[0]


@pytest.mark.parametrize(("attempts", "expected"), [(1, []), (4, [0.5, 1.0, 2.0]), (5, [0.5, 1.0, 2.0, 2.0])])
def test_backoff_schedule(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], attempts: int, expected: list[float]
) -> None:
    _patch(monkeypatch, FlakyApprise(fail=99))
    (d,) = _notifier(sleeps, attempts=attempts).notify([URL], title="t", body="b", severity="info")
    assert d.attempts == attempts and sleeps == expected


def test_exceptions_are_failed_attempts_with_secrets_scrubbed(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    secret_url = "json://gw:hunter22@127.0.0.1:9/hook-s3cr3t"
    fake = FlakyApprise(fail=99, exc=RuntimeError(f"plugin exploded posting to {secret_url} (hunter22)"))
    _patch(monkeypatch, fake)
    (d,) = _notifier(sleeps, backoff_s=(0.0,)).notify([secret_url], title="t", body="b", severity="info")
    assert not d.ok and d.attempts == 3
    assert d.error is not None and "RuntimeError: plugin exploded" in d.error
    assert "hunter22" not in d.error and "s3cr3t" not in d.error and d.url == "json://***@127.0.0.1:9/***"


def test_invalid_url_is_not_sent(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    fake = FlakyApprise(fail=0)
    _patch(monkeypatch, fake)
    out = _notifier(sleeps).notify(["nosuchscheme://x/y", "garbage"], title="t", body="b", severity="info")
    assert [d.attempts for d in out] == [0, 0] and not any(d.ok for d in out)
    assert out[0].error is not None and out[0].error.startswith("invalid notification URL 'nosuchscheme://***'")
    assert out[1].error is not None and "no SCHEME:// prefix" in out[1].error and "Fix:" in out[1].error
    assert fake.calls == [] and sleeps == []


def test_env_expansion_at_send_time(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    fake = FlakyApprise(fail=0)
    _patch(monkeypatch, fake)
    notifier = AppriseNotifier(sleep=sleeps.append, environ={"GW_HOOK": "tok-abc123"})
    ok, missing = notifier.notify(
        ["json://127.0.0.1:9/${GW_HOOK}", "json://127.0.0.1:9/${GW_UNSET}"], title="t", body="b", severity="info"
    )
    assert ok.ok and "tok-abc123" in fake.calls[0]["url"] and "tok-abc123" not in ok.url
    assert not missing.ok and missing.attempts == 0 and len(fake.calls) == 1
    assert missing.error is not None and "GW_UNSET" in missing.error and "export GW_UNSET=" in missing.error


def test_timeouts_and_message_kind(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    fake = FlakyApprise(fail=0)
    _patch(monkeypatch, fake)
    notifier = _notifier(sleeps, timeout_s=2.5)
    notifier.notify([URL], title="t", body="b", severity="CRITICAL")
    notifier.notify([URL + "?cto=7&rto=8"], title="t", body="b", severity="resolved")
    notifier.notify([URL], title="t", body="b", severity="whatever")
    first, own, other = fake.calls
    assert (first["cto"], first["rto"]) == (2.5, 2.5)
    assert (own["cto"], own["rto"]) == (7.0, 8.0)  # the URL's own Apprise timeouts win
    assert [c["notify_type"] for c in fake.calls] == ["failure", "success", "info"]
    assert all(c["body_format"] == apprise.NotifyFormat.TEXT for c in fake.calls)


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def notify(self, urls: Sequence[str], *, title: str, body: str, severity: str) -> list[Delivery]:
        self.calls.append({"urls": list(urls), "title": title, "body": body, "severity": severity})
        return []


def test_transition_text() -> None:
    title, body = transition_text(
        rule="endpoint-down",
        state="firing",
        severity="critical",
        value=0.0,
        message="max(probe.up) over 1m = 0 < 1 on gemma-prod",
        target="gemma-prod",
    )
    assert title == "[CRITICAL] firing: endpoint-down on gemma-prod"
    lines = body.splitlines()
    assert lines[0] == "max(probe.up) over 1m = 0 < 1 on gemma-prod"
    assert {"rule: endpoint-down", "state: firing", "severity: critical", "value: 0", "target: gemma-prod"} <= set(
        lines
    )
    title, body = transition_text(rule="r", state="resolved", severity="warning", value=None, message="m", target=None)
    assert title == "[WARNING] resolved: r" and "value: -" in body and "target:" not in body


def test_notify_transition_uses_the_notifier() -> None:
    fake = RecordingNotifier()
    assert isinstance(fake, Notifier) and isinstance(AppriseNotifier(), Notifier)
    kw: dict[str, Any] = {"rule": "r", "state": "firing", "severity": "critical", "value": 3.0, "message": "m"}
    notify_transition(fake, ["json://a.example.com/x"], target="t", **kw)
    assert notify_transition(fake, [], target="t", **kw) == []
    (call,) = fake.calls
    assert call["urls"] == ["json://a.example.com/x"] and call["severity"] == "critical"
    assert call["title"] == "[CRITICAL] firing: r on t" and "value: 3" in call["body"]


def test_apprise_debug_logging_is_kept_out(monkeypatch: pytest.MonkeyPatch) -> None:
    apprise_log = logging.getLogger("apprise")
    monkeypatch.setattr(apprise_log, "level", logging.NOTSET)
    AppriseNotifier()
    assert apprise_log.level == logging.WARNING  # Apprise's DEBUG lines print whole URLs
    monkeypatch.setattr(apprise_log, "level", logging.DEBUG)
    AppriseNotifier()
    assert apprise_log.level == logging.DEBUG  # configured on purpose: left alone
