"""Plumbing shared by the HTTP backends (OpenAI-compatible, Ollama...): generic, no wire format.

* :func:`validate_base_url` - one-line UserError for anything but an ``http(s)://host`` URL.
* :class:`EnvBearerAuth` - ``Authorization: Bearer`` from an environment variable that is
  read on every request, so the key itself is never stored on any gemmawatch object.
* :class:`RetryPolicy` / :func:`call_with_retries` - exponential backoff with jitter on
  429, 5xx and connection errors; ``Retry-After`` honoured up to a bound.
* :class:`RequestFailure` / :func:`classify_exception` / :func:`status_failure` - every
  per-request failure becomes one ``error_class`` (``timeout``, ``connection``,
  ``http_429``, ``http_500``, ``stream_cut``, ``invalid_json``...).
* :func:`iter_sse` - Server-Sent Events per the WHATWG spec (comments, multi-line ``data``).
* :class:`StreamTimer` - TTFT/ITL/E2E by vLLM's ``benchmark_serving`` definitions.
* :func:`map_concurrently` - order-preserving thread pool with a concurrency limit.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from gemmawatch.errors import UserError, one_line

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Statuses worth retrying: rate limiting and transient server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def validate_base_url(url: object, *, target: str, example: str) -> str:
    """``url`` without a trailing slash; UserError (one line) unless it is ``http(s)://host[:port]...``."""
    text = str(url or "").strip()
    if not text:
        raise UserError(f"Target '{target}' has no base URL. Fix: write the spec as {example} or set base_url")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"Invalid base URL '{text}' for target '{target}'. Fix: use an http(s) URL such as {example}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise UserError(f"Invalid port in base URL '{text}' for target '{target}'. Fix: use e.g. {example}") from exc
    return text.rstrip("/")


class EnvBearerAuth(httpx.Auth):
    """Bearer auth whose key lives only in the environment variable ``env_name``.

    Only the variable's *name* is kept; the value is read when a request is sent.
    ``repr`` shows the name, never the key. :meth:`redact` scrubs the key out of any
    text (server error bodies can echo headers back).
    """

    def __init__(self, env_name: str) -> None:
        self.env_name = env_name

    @staticmethod
    def check(env_name: str) -> None:
        """UserError (one line) when the variable is unset or empty."""
        if not os.environ.get(env_name):
            raise UserError(
                f"Environment variable {env_name} named by api_key_env is not set. Fix: export {env_name}=..."
            )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = os.environ.get(self.env_name)
        if key:
            request.headers["Authorization"] = f"Bearer {key}"
        yield request

    def redact(self, text: str) -> str:
        """``text`` with the current key value replaced by ``***``."""
        key = os.environ.get(self.env_name)
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def __repr__(self) -> str:
        return f"EnvBearerAuth(env_name={self.env_name!r})"


class RequestFailure(Exception):
    """One classified failure of one request (what GenerationResult.error_class records).

    ``retryable`` failures happened before any output arrived, so a retry cannot
    duplicate or mis-time output. ``retry_after`` is the server's hint in seconds.
    """

    def __init__(self, error_class: str, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(one_line(message))
        self.error_class = error_class
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_failure(status: int, body: str = "", *, retry_after: str | None = None) -> RequestFailure:
    """The failure for an HTTP error status (``http_<code>``), retryable for 429/5xx/408."""
    detail = one_line(body)[:200]
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    return RequestFailure(
        f"http_{status}",
        message,
        retryable=status in RETRYABLE_STATUS,
        retry_after=parse_retry_after(retry_after),
    )


def classify_exception(exc: BaseException, *, output_started: bool = False) -> RequestFailure:
    """Map an httpx exception to a RequestFailure.

    ``output_started``: some of the answer had already arrived; the request is then a
    ``stream_cut`` (if the connection broke) and never retried.
    """
    if isinstance(exc, RequestFailure):
        return exc
    name = type(exc).__name__
    text = f"{name}: {exc}" if str(exc) else name
    if isinstance(exc, httpx.ConnectTimeout):
        return RequestFailure("timeout", f"connect timeout ({text})", retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        # A read timeout is not retried: the server may still be working on it.
        return RequestFailure("timeout", f"timed out waiting for the server ({text})")
    if isinstance(exc, httpx.ConnectError):
        return RequestFailure("connection", f"cannot connect ({text})", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        if output_started:
            return RequestFailure("stream_cut", f"connection closed mid-stream ({text})")
        return RequestFailure("connection", f"connection failed ({text})", retryable=True)
    if isinstance(exc, httpx.HTTPError):
        return RequestFailure("connection", text)
    return RequestFailure(name, text)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After`` up to ``retry_after_max_s``.

    Attempt ``k`` (0-based) waits ``d/2 + U(0, d/2)`` with ``d = min(backoff_max_s,
    backoff_base_s * 2**k)``, unless the server sent ``Retry-After``: then that many
    seconds, capped at ``retry_after_max_s`` (a server asking for an hour must not
    stall a benchmark run).
    """

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "request",
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RequestFailure], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or raises a non-retryable RequestFailure.

    ``attempt`` must raise RequestFailure (see :func:`classify_exception`) on failure.
    The last failure is re-raised once ``policy.max_retries`` retries are spent.
    """
    for number in range(policy.max_retries + 1):
        try:
            return attempt()
        except RequestFailure as failure:
            if not failure.retryable or number >= policy.max_retries:
                raise
            wait = policy.delay(number, failure.retry_after)
            log.info(
                "%s failed (%s); retry %d/%d in %.2f s", what, failure.error_class, number + 1, policy.max_retries, wait
            )
            if on_retry is not None:
                on_retry(failure)
            sleep(wait)
    raise AssertionError("unreachable")  # the loop always returns or raises


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event. ``terminated`` is False for an event cut off by end of stream."""

    data: str
    event: str = "message"
    terminated: bool = True


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Parse SSE lines (already split, without line endings) into events.

    Comment lines (``:`` keep-alives) are skipped, several ``data:`` lines join with
    ``\\n``, a blank line dispatches. An unterminated last event is still yielded,
    marked ``terminated=False`` so callers can tell a cut stream from a bad payload.
    """
    data: list[str] = []
    event = "message"
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SSEEvent("\n".join(data), event)
            data, event = [], "message"
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        # "id" and "retry" carry nothing a completion stream needs.
    if data:
        yield SSEEvent("\n".join(data), event, terminated=False)


@dataclass
class StreamTimer:
    """Timestamps of one streamed request (vLLM ``benchmark_serving`` definitions).

    ``start`` is taken when the request is handed over; :meth:`token` marks each chunk
    that carried output; :meth:`finish` marks the last byte. TTFT = first token - start;
    ITL = gaps between token chunks; E2E = start -> last byte.
    """

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    start: float = field(default_factory=time.perf_counter)
    tokens: list[float] = field(default_factory=list)
    end: float | None = None

    def token(self) -> None:
        """Record the arrival of a chunk carrying output."""
        self.tokens.append(time.perf_counter())

    def finish(self) -> None:
        """Record the last byte (idempotent: the first call wins)."""
        if self.end is None:
            self.end = time.perf_counter()

    @property
    def ttft_s(self) -> float | None:
        """Time to the first output chunk, None if none arrived."""
        return self.tokens[0] - self.start if self.tokens else None

    @property
    def e2e_s(self) -> float:
        """Start to last byte (to now if :meth:`finish` was never called)."""
        return (self.end if self.end is not None else time.perf_counter()) - self.start

    @property
    def itl_s(self) -> list[float]:
        """Gaps between consecutive output chunks."""
        return [b - a for a, b in zip(self.tokens, self.tokens[1:], strict=False)]


def map_concurrently(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[fn(x) for x in items]`` with at most ``max_workers`` running at once, order kept.

    ``fn`` should not raise (HTTP backends turn failures into results); if it does,
    the first exception propagates after the pool has drained.
    """
    if max_workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items)), thread_name_prefix="gemmawatch-http") as pool:
        return list(pool.map(fn, items))
