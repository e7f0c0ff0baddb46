"""Shared pieces of the SDK-based HTTP backends (Ollama, Google GenAI).

Timing follows the Backend contract (vLLM ``benchmark_serving``): the clock starts
just before the SDK call, TTFT is the first chunk that carries text, ITL the gaps
between such chunks, E2E the end of the stream (last byte), and TPOT is computed
from E2E, TTFT and the server's output-token count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TokenSource, streamed_result
from gemmawatch.errors import one_line

__all__ = ["StreamClock", "run_requests", "transport_error_class", "trim_at_stop"]


def trim_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` cut before the earliest stop string (servers already do this; this is the safety net)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text[:cut] if cut >= 0 else text


# httpx exception class -> error class. Matched by name along the MRO because google-genai
# uses httpx2 (a fork with its own, unrelated exception classes) and ollama uses httpx.
_HTTPX_CLASSES = {
    "TimeoutException": "timeout",
    "ConnectError": "connection",
    "RemoteProtocolError": "stream_cut",  # the peer closed mid-body (incomplete chunked read)
    "ReadError": "stream_cut",  # the socket was reset mid-stream
    "TransportError": "connection",
}


def transport_error_class(exc: BaseException) -> str | None:
    """Error class for network-level failures of either SDK; None for anything else."""
    for cls in type(exc).__mro__:
        if cls.__module__.split(".")[0] in ("httpx", "httpx2") and cls.__name__ in _HTTPX_CLASSES:
            return _HTTPX_CLASSES[cls.__name__]
    if isinstance(exc, ConnectionResetError):
        return "stream_cut"
    if isinstance(exc, ConnectionError):  # includes the ollama SDK's wrapper around httpx.ConnectError
        return "connection"
    if isinstance(exc, json.JSONDecodeError):
        return "invalid_json"
    return None


class StreamClock:
    """Times one streamed request; ``add`` each text chunk as it arrives, then ``finish`` or ``fail``."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()
        self._times: list[float] = []
        self._parts: list[str] = []

    def add(self, text: str | None) -> None:
        """Record a chunk; chunks without text (metadata, the final usage event) are not tokens."""
        if text:
            self._times.append(time.perf_counter())
            self._parts.append(text)

    @property
    def chunks(self) -> int:
        """Text chunks seen so far."""
        return len(self._parts)

    def finish(
        self, *, input_tokens: int, output_tokens: int, token_source: TokenSource, stop: Sequence[str]
    ) -> GenerationResult:
        """The successful result; E2E ends now (after the stream's last byte)."""
        return streamed_result(
            text=trim_at_stop("".join(self._parts), stop),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            token_source=token_source,
            started_at=self.started_at,
            t0=self._t0,
            arrivals=self._times,
            end=time.perf_counter(),
        )

    def fail(self, error_class: str, message: str) -> GenerationResult:
        """A failed result: no text, the time until the failure, and a one-line message."""
        return GenerationResult(
            text="",
            input_tokens=0,
            output_tokens=0,
            token_source="server",
            started_at=self.started_at,
            e2e_s=time.perf_counter() - self._t0,
            error=one_line(message) or error_class,
            error_class=error_class,
        )


def run_requests(
    one: Callable[[GenerationRequest], GenerationResult], requests: Sequence[GenerationRequest], concurrency: int
) -> list[GenerationResult]:
    """``one`` over ``requests`` in order, at most ``concurrency`` in flight (1: strictly sequential)."""
    if concurrency <= 1 or len(requests) <= 1:
        return [one(r) for r in requests]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, requests))
