"""Load-test requests through any loaded Backend, on a bounded thread pool.

Used for targets without an OpenAI-compatible endpoint (transformers and
llama.cpp in this process, Ollama's native API, Google GenAI). ``Backend.stream``
blocks, so each request runs on a worker thread; the pool holds ``capacity``
threads and extra requests wait in its queue. That wait is part of what the
user would feel, so it counts: ``sent_s`` is when the request was handed to the
pool, and TTFT/E2E run from there. In-process model backends are not safe to
call from two threads at once, so their capacity is 1 whatever the profile asks.
"""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult
from gemmawatch.collectors.load.driver import Clock
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.errors import one_line

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend

#: Backends that run the model in this process: one request at a time.
SERIAL_BACKENDS = frozenset({"transformers", "llamacpp"})


class BackendDriver:
    """Runs ``backend.stream`` for each request (see the module docstring)."""

    def __init__(self, backend: Backend, *, workers: int) -> None:
        self.backend = backend
        self.name = backend.info.name
        self.capacity: int | None = 1 if backend.info.backend in SERIAL_BACKENDS else max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="gemmawatch-load")

    async def send(self, prompt: LoadPrompt, event: RequestEvent, clock: Clock) -> None:
        """Queue the request on the pool and translate the timed result into ``event``."""
        loop = asyncio.get_running_loop()
        request = GenerationRequest(prompt=prompt.text, max_new_tokens=prompt.max_tokens)
        future = loop.run_in_executor(self._pool, _timed_stream, self.backend, request, clock)
        try:
            started, result = await future
        except asyncio.CancelledError:
            # The thread cannot be interrupted; the request is recorded as cancelled now.
            event.end_s, event.error, event.error_class = clock(), "cancelled before the answer ended", "cancelled"
            raise
        fill_event(event, started, result, prompt)

    async def aclose(self) -> None:
        """Wait for running requests, then stop the threads (the backend stays open)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _timed_stream(backend: Backend, request: GenerationRequest, clock: Clock) -> tuple[float, GenerationResult]:
    started = clock()
    try:
        return started, backend.stream(request)
    except Exception as exc:  # a backend should return failures, but one raising must not kill the test
        from datetime import UTC, datetime

        failed = GenerationResult(
            text="",
            input_tokens=0,
            output_tokens=0,
            token_source="tokenizer",
            started_at=datetime.now(UTC),
            e2e_s=clock() - started,
            error=one_line(str(exc)) or type(exc).__name__,
            error_class=type(exc).__name__,
        )
        return started, failed


def fill_event(event: RequestEvent, started: float, result: GenerationResult, prompt: LoadPrompt) -> None:
    """Place a backend's relative timings (TTFT, ITL, E2E) on the load test's clock.

    ``started`` is when the worker thread began the request; the backend's
    ``ttft_s``/``itl_s``/``e2e_s`` run from there, so chunk times are
    ``started + ttft`` then the running sum of the ITL gaps.
    """
    event.end_s = started + result.e2e_s
    event.input_tokens = result.input_tokens or prompt.input_tokens
    event.output_tokens = result.output_tokens
    event.token_source = result.token_source
    if result.ttft_s is not None:
        first = started + result.ttft_s
        event.first_chunk_s = first
        event.chunk_s = [first, *(first + t for t in itertools.accumulate(result.itl_s))]
        event.n_chunks = len(event.chunk_s)
    if result.error is not None:
        event.error = one_line(result.error)[:300]
        event.error_class = result.error_class or "error"
