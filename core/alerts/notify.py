"""Sending alert notifications to chat, e-mail, paging and webhook receivers.

Receivers are `Apprise <https://github.com/caronc/apprise>`_ URLs
(``slack://...``, ``msteams://...``, ``mailtos://...``, ``pagerduty://...``,
``json://host/path`` for a plain webhook, and about a hundred more). The
:class:`Notifier` protocol is what the alert engine depends on;
:class:`AppriseNotifier` is the real one and tests inject fakes.

Secrets:

* ``${NAME}`` in a URL is replaced by the environment variable ``NAME`` at
  send time (:func:`expand_env`), so tokens and passwords need not be written
  in ``gemmawatch.yaml`` nor stored in the database. Only that exact form is
  expanded (not ``$NAME``); a variable that is not set fails that delivery
  with a one-line error naming the variable.
* Every URL that leaves this module (:class:`Delivery`, log lines, error
  messages) goes through :func:`redact_url` first.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from gemmawatch.errors import MissingDependencyError, one_line

log = logging.getLogger(__name__)

MASK = "***"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$")
_TLD = re.compile(r"^[A-Za-z]{2,63}$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")

_URL_FIX = (
    "Fix: write an Apprise URL such as slack://TokenA/TokenB/TokenC, mailtos://user:${SMTP_PASSWORD}@example.com "
    "or json://host:port/path (see https://github.com/caronc/apprise/wiki)"
)
_SEND_FIX = "Fix: check that the receiver is reachable from this host and that the URL's credentials are valid"


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one notification to one receiver URL.

    Attributes:
        url: The receiver, redacted by :func:`redact_url` (no credentials,
            tokens or paths): safe to log, print and store.
        ok: True when the receiver accepted the notification.
        attempts: Sends tried (0 when the URL was invalid or named an unset
            environment variable, so nothing was sent).
        error: One line (reason and fix) when ``ok`` is False, else None.
        at: When the last attempt finished (aware, UTC).
    """

    url: str
    ok: bool
    attempts: int
    error: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``at`` stays a datetime) for JSON output."""
        return asdict(self)


@runtime_checkable
class Notifier(Protocol):
    """Sends one notification to several receivers; one :class:`Delivery` per URL, in order.

    Implementations never raise for a receiver that fails: the failure is a
    Delivery with ``ok=False``.
    """

    def notify(self, urls: Sequence[str], *, title: str, body: str, severity: str) -> list[Delivery]:
        """Send ``title``/``body`` (plain text) at ``severity`` to every URL."""
        ...


# --------------------------------------------------------------------------- #
# Redaction and environment expansion
# --------------------------------------------------------------------------- #


def _public_host(host: str) -> bool:
    """True when ``host`` reads as a network address rather than a token.

    An IPv4 or bracketed IPv6 literal, ``localhost``, or a dotted DNS name whose
    labels are valid and whose last label is alphabetic. Services that put
    tokens where the host goes (``slack://T1/B2/C3``, ``tgram://123:ABC/...``,
    ``discord://ID/TOKEN``, ``pagerduty://KEY@KEY``) fail this test.
    """
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if host.lower() == "localhost" or _IPV4.match(host):
        return True
    labels = host.split(".")
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels) and bool(_TLD.match(labels[-1]))


def redact_url(url: str) -> str:
    """The URL with every possible secret replaced by ``***``.

    Rule: keep the scheme and a host[:port] that reads as a network address;
    replace user info (``user:password@`` becomes ``***@``), the path, the
    query and the fragment by ``***``. When the host itself does not look like
    an address (many services put a token there), everything after the scheme
    is ``***``. Examples::

        json://127.0.0.1:8123/hooks/abc?x=1   -> json://127.0.0.1:8123/***
        mailtos://me:pw@smtp.example.com:587  -> mailtos://***@smtp.example.com:587
        https://hooks.slack.com/services/T/B/C -> https://hooks.slack.com/***
        slack://T1234/B5678/XXXX              -> slack://***
        not a url                             -> ***

    Receivers on one host that differ only in credentials, path or query
    therefore redact to the same text; nothing derived from the secret parts
    (not even a hash) is kept.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not _SCHEME.match(scheme):
        return MASK
    netloc, tail = _split_netloc(rest)
    userinfo, at, hostport = netloc.rpartition("@")
    host, port = _split_port(hostport)
    if not host or not _public_host(host) or (port is not None and not port.isdigit()):
        return f"{scheme.lower()}://{MASK}"
    out = f"{scheme.lower()}://"
    if at or userinfo:
        out += f"{MASK}@"
    out += host + (f":{port}" if port else "")
    if tail.strip("/?#"):
        out += f"/{MASK}"
    return out


def _split_netloc(rest: str) -> tuple[str, str]:
    for i, ch in enumerate(rest):
        if ch in "/?#":
            return rest[:i], rest[i:]
    return rest, ""


def _split_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return "", None
        host, after = hostport[: end + 1], hostport[end + 1 :]
        return host, (after[1:] if after.startswith(":") else None)
    host, colon, port = hostport.partition(":")
    return host, (port if colon else None)


def expand_env(url: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each ``${NAME}`` in ``url`` by the environment variable ``NAME``.

    Raises:
        KeyError: The first variable that is not set (its name is the key).
    """
    env = os.environ if environ is None else environ

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _ENV_REF.sub(sub, url)


def _secret_parts(url: str) -> list[str]:
    """Substrings of ``url`` that may be secret, longest first (to scrub them from error text)."""
    _, sep, rest = url.partition("://")
    if not sep:
        return [url] if len(url) >= 4 else []
    netloc, tail = _split_netloc(rest)
    userinfo, _, hostport = netloc.rpartition("@")
    host, _port = _split_port(hostport)
    parts = [rest, tail, userinfo, *userinfo.split(":")]
    if host and not _public_host(host):
        parts.append(hostport)
        parts.append(host)
    for piece in re.split(r"[/?#&=,:@]", tail):
        parts.append(piece)
        parts.append(urllib.parse.unquote(piece))
    return sorted({p for p in parts if len(p) >= 4}, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for part in _secret_parts(url):
        text = text.replace(part, MASK)
    return one_line(text)


# --------------------------------------------------------------------------- #
# Apprise
# --------------------------------------------------------------------------- #

#: Severity (case-insensitive) -> Apprise notification type (colour/icon in chat services).
_NOTIFY_TYPES = {
    "critical": "failure",
    "error": "failure",
    "warning": "warning",
    "info": "info",
    "ok": "success",
    "resolved": "success",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _has_param(url: str, *names: str) -> bool:
    query = urllib.parse.urlsplit(url).query if "://" in url else ""
    return any(name in urllib.parse.parse_qs(query) for name in names)


class AppriseNotifier:
    """:class:`Notifier` over Apprise: per-URL delivery with retries and backoff.

    Each URL gets its own Apprise object (a fresh one per attempt, so Apprise's
    own per-service rate limit never sleeps between our retries), its own
    attempts and its own :class:`Delivery`. Nothing is raised for a failing
    receiver: failures are logged at WARNING (redacted URL) and returned.
    Apprise logs whole URLs at DEBUG, so its logger is set to WARNING unless
    it was configured already.

    Args:
        attempts: Sends tried per URL before giving up (at least 1).
        backoff_s: Seconds slept before the 2nd, 3rd, ... attempt; the last
            value repeats when there are more attempts than values.
        timeout_s: Socket connect and read timeout per attempt, unless the URL
            sets Apprise's own ``cto``/``rto`` parameters.
        sleep: Called with the backoff seconds (tests inject a recorder).
        environ: Where ``${NAME}`` references are looked up (default
            ``os.environ``, read at send time).

    Raises:
        MissingDependencyError: Apprise is not installed.
    """

    def __init__(
        self,
        *,
        attempts: int = 3,
        backoff_s: Sequence[float] = (0.5, 1.0, 2.0),
        timeout_s: float = 10,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        try:
            import apprise
        except ImportError as exc:
            raise MissingDependencyError(
                "Notifications need the 'apprise' package, which is not installed. Fix: pip install apprise"
            ) from exc
        self._apprise = apprise
        _guard_apprise_logs()
        self.attempts = max(1, int(attempts))
        self.backoff_s = tuple(float(b) for b in backoff_s) or (0.0,)
        self.timeout_s = float(timeout_s)
        self._sleep = sleep
        self._environ = environ

    def notify(self, urls: Sequence[str], *, title: str, body: str, severity: str) -> list[Delivery]:
        """Send to every URL in turn; one :class:`Delivery` per URL, in the same order."""
        return [self._deliver(url, title=title, body=body, severity=severity) for url in urls]

    # -- one receiver ------------------------------------------------------------------------

    def _deliver(self, url: str, *, title: str, body: str, severity: str) -> Delivery:
        try:
            return self._deliver_unsafe(url, title=title, body=body, severity=severity)
        except Exception as exc:  # never raise for a receiver (a bug in a plugin, odd input)
            shown = redact_url(str(url))
            error = f"notification to {shown} failed: {_scrub(f'{type(exc).__name__}: {exc}', str(url))}. {_SEND_FIX}"
            log.warning("%s", error)
            return Delivery(url=shown, ok=False, attempts=0, error=error, at=_now())

    def _deliver_unsafe(self, url: str, *, title: str, body: str, severity: str) -> Delivery:
        try:
            real = expand_env(url, self._environ)
        except KeyError as missing:
            shown = redact_url(url)
            name = missing.args[0]
            error = (
                f"environment variable {name} used by notification URL '{shown}' is not set. "
                f"Fix: export {name}=... in the environment gemmawatch runs in"
            )
            log.warning("%s", error)
            return Delivery(url=shown, ok=False, attempts=0, error=error, at=_now())
        shown = redact_url(real)
        if self._plugin(real) is None:
            why = "Apprise does not recognise it" if "://" in real else "it has no SCHEME:// prefix"
            error = f"invalid notification URL '{shown}': {why}. {_URL_FIX}"
            log.warning("%s", error)
            return Delivery(url=shown, ok=False, attempts=0, error=error, at=_now())

        reason = "no attempt was made"
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self._sleep(self.backoff_s[min(attempt - 2, len(self.backoff_s) - 1)])
            try:
                ok, reason = self._send_once(real, title=title, body=body, severity=severity)
            except Exception as exc:
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            reason = _scrub(reason, real)
            if ok:
                return Delivery(url=shown, ok=True, attempts=attempt, error=None, at=_now())
            log.info("notification to %s failed (attempt %d of %d): %s", shown, attempt, self.attempts, reason)
        error = f"notification to {shown} failed after {self.attempts} attempt(s): {reason.rstrip('.')}. {_SEND_FIX}"
        log.warning("%s", error)
        return Delivery(url=shown, ok=False, attempts=self.attempts, error=error, at=_now())

    def _plugin(self, url: str) -> Any:
        """A configured Apprise holding this one URL, or None when Apprise cannot parse it."""
        apprise = self._apprise
        asset = apprise.AppriseAsset(app_id="gemmawatch", app_desc="gemmawatch alerts")
        apobj = apprise.Apprise(asset=asset)
        if not apobj.add(url):
            return None
        if not _has_param(url, "cto", "rto"):
            for plugin in apobj:
                plugin.socket_connect_timeout = self.timeout_s
                plugin.socket_read_timeout = self.timeout_s
        return apobj

    def _send_once(self, url: str, *, title: str, body: str, severity: str) -> tuple[bool, str]:
        apprise = self._apprise
        apobj = self._plugin(url)
        if apobj is None:  # parsed a moment ago; only a changing plugin set gets here
            return False, "Apprise no longer recognises the URL"
        notify_type = _NOTIFY_TYPES.get(severity.strip().lower(), "info")
        result = apobj.notify(body=body, title=title, notify_type=notify_type, body_format=apprise.NotifyFormat.TEXT)
        if result:
            return True, ""
        return False, _failure_reason(result)


def _guard_apprise_logs() -> None:
    """Keep Apprise's DEBUG/INFO lines (they print whole URLs, path tokens included) out of our logs.

    Only when nobody configured the ``apprise`` logger: an explicit level is left alone.
    """
    apprise_log = logging.getLogger("apprise")
    if apprise_log.level == logging.NOTSET:
        apprise_log.setLevel(logging.WARNING)


def _failure_reason(result: Any) -> str:
    """The warnings Apprise recorded for a failed call (Apprise >= 2 returns them), else a generic reason."""
    messages: list[str] = []
    try:
        for service in getattr(result, "results", ()) or ():
            for attempt in service.attempts:
                messages.extend(str(e.message) for e in attempt.logs if str(e.level) in ("WARNING", "ERROR"))
    except Exception:  # an Apprise without per-call logs, or a changed result type
        messages = []
    seen: list[str] = []
    for message in messages:
        message = one_line(message)
        if message and message not in seen:
            seen.append(message)
    return " ".join(seen[-2:]) or "the receiver did not accept the notification"


# --------------------------------------------------------------------------- #
# Alert transitions
# --------------------------------------------------------------------------- #


def _fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    return format(float(value), ".6g")


def transition_text(
    *, rule: str, state: str, severity: str, value: float | None, message: str, target: str | None
) -> tuple[str, str]:
    """Title and plain-text body of the notification for one alert transition.

    Title: ``[CRITICAL] firing: endpoint-down on gemma-prod``. Body: the
    engine's one-line message, then rule, state, severity, value and target on
    their own lines.
    """
    where = f" on {target}" if target else ""
    title = f"[{severity.upper()}] {state}: {rule}{where}"
    lines = [
        one_line(message),
        "",
        f"rule: {rule}",
        f"state: {state}",
        f"severity: {severity}",
        f"value: {_fmt_value(value)}",
    ]
    if target:
        lines.append(f"target: {target}")
    lines.append(f"sent by gemmawatch at {_now().strftime('%Y-%m-%d %H:%M:%S')} UTC")
    return title, "\n".join(lines)


def notify_transition(
    notifier: Notifier,
    urls: Sequence[str],
    *,
    rule: str,
    state: str,
    severity: str,
    value: float | None,
    message: str,
    target: str | None,
) -> list[Delivery]:
    """Notify ``urls`` of one alert transition (``state`` ``"firing"`` or ``"resolved"``).

    Builds the title and body with :func:`transition_text` and passes
    ``severity`` through unchanged. Returns the notifier's deliveries; no URLs
    means no call and an empty list.
    """
    if not urls:
        return []
    title, body = transition_text(
        rule=rule, state=state, severity=severity, value=value, message=message, target=target
    )
    return notifier.notify(list(urls), title=title, body=body, severity=severity)


def send_test_notification(notifier: Notifier, url: str) -> Delivery:
    """Send one test notification to ``url`` (what ``gemmawatch alerts test-notify`` does)."""
    title = "[INFO] gemmawatch test notification"
    body = (
        "This is a test notification from gemmawatch (severity: info).\n"
        "If you can read it, alerts will reach this receiver.\n"
        f"sent at {_now().strftime('%Y-%m-%d %H:%M:%S')} UTC"
    )
    (delivery,) = notifier.notify([url], title=title, body=body, severity="info")
    return delivery
