"""The ``Driver`` protocol: how one load-test request reaches a target.

A driver turns a prompt into a filled-in :class:`RequestEvent`. Two exist:
:class:`~gemmawatch.collectors.load.http_driver.HttpDriver` speaks the
OpenAI-compatible streaming API directly over asyncio (the fast path, used for
``openai`` targets), and :class:`~gemmawatch.collectors.load.inprocess_driver.BackendDriver`
runs any loaded Backend's ``stream`` on a bounded thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.prompts import LoadPrompt

#: Seconds since the load test started; every event time comes from one of these.
Clock = Callable[[], float]


def start_clock() -> Clock:
    """A clock reading 0 now (``time.perf_counter`` based: monotonic, sub-microsecond)."""
    t0 = time.perf_counter()
    return lambda: time.perf_counter() - t0


class Driver(Protocol):
    """Sends one request and records what happened.

    ``send`` must fill ``event`` in place (chunk times, end, tokens, status or
    error) and never raise for a request failure: failures are data. If the
    task is cancelled mid-request (Ctrl-C), the driver marks the event
    ``error_class="cancelled"`` with ``end_s`` set, then lets the cancellation
    propagate. ``capacity`` is how many requests it can really run at once
    (None: no limit of its own), so profiles never pretend to more.
    """

    name: str
    capacity: int | None

    async def send(self, prompt: LoadPrompt, event: RequestEvent, clock: Clock) -> None:
        """Send ``prompt`` now; ``event.sent_s`` is already set by the caller."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
