"""Load-test requests over the OpenAI-compatible streaming API, on asyncio + aiohttp.

One ``aiohttp`` session with a connection pool as large as the in-flight cap,
and a hand-rolled SSE reader that only parses ``data:`` lines: the generator
must never be the bottleneck (see ``benchmarks/load_ceiling.py``). Requests are
never retried: a load test counts failures, it does not hide them.

A chunk counts as a token arrival when it carries output text (vLLM's
definition; role-only and usage-only chunks do not). Token counts come from the
server's ``usage`` when it sends one (``token_source="server"``), else the
output is counted in text chunks (``"chunks"``: one token per chunk on vLLM and
llama.cpp servers) and the input as the prompt's known length.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gemmawatch.collectors.backends.base import GenerationRequest
from gemmawatch.collectors.backends.openai_options import OpenAIOptions
from gemmawatch.collectors.backends.openai_wire import (
    chunk_error,
    chunk_text,
    chunk_usage,
    endpoint,
    generation_payload,
)
from gemmawatch.collectors.load.driver import Clock
from gemmawatch.collectors.load.events import RequestEvent
from gemmawatch.collectors.load.prompts import LoadPrompt
from gemmawatch.errors import MissingDependencyError, one_line

if TYPE_CHECKING:
    import aiohttp

    from gemmawatch.collectors.backends.base import TargetInfo


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:  # optional dependency of the http extra
        raise MissingDependencyError("The load generator needs aiohttp. Fix: pip install 'gemmawatch[http]'") from exc
    return aiohttp


class HttpDriver:
    """Streams completions from an ``openai`` target (see the module docstring)."""

    capacity: int | None = None

    def __init__(self, info: TargetInfo, *, max_inflight: int, ignore_eos: bool = False) -> None:
        http = _aiohttp()
        self.name = info.name
        self.model = info.model_id
        self.options = opts = OpenAIOptions.from_info(info)
        self.url = opts.base_url + endpoint(opts.api)
        self.extra_body: dict[str, Any] = {**opts.extra_body, **({"ignore_eos": True} if ignore_eos else {})}
        headers = {"Content-Type": "application/json"}
        if opts.api_key_env:
            # Read at start only; the key lives in this header and nowhere else (never stored or logged).
            headers["Authorization"] = f"Bearer {os.environ[opts.api_key_env]}"
        self._headers = headers
        self._timeout = http.ClientTimeout(total=None, sock_connect=opts.connect_timeout_s, sock_read=opts.timeout_s)
        self._max_inflight = max_inflight
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop (aiohttp binds a session to its loop).
        if self._session is None:
            http = _aiohttp()
            connector = http.TCPConnector(limit=self._max_inflight, limit_per_host=self._max_inflight)
            self._session = http.ClientSession(connector=connector, timeout=self._timeout, headers=self._headers)
        return self._session

    def payload(self, prompt: LoadPrompt) -> dict[str, Any]:
        """The request body: streamed, greedy, capped at the prompt's ``max_tokens``."""
        request = GenerationRequest(
            prompt=prompt.text, max_new_tokens=prompt.max_tokens, chat=self.options.api == "chat"
        )
        return generation_payload(
            self.model,
            request,
            api=self.options.api,
            include_usage=self.options.include_usage,
            extra_body=self.extra_body,
        )

    async def send(self, prompt: LoadPrompt, event: RequestEvent, clock: Clock) -> None:
        """Send one streamed request and fill ``event``; failures are recorded, not raised."""
        http = _aiohttp()
        body = json.dumps(self.payload(prompt)).encode()
        api = self.options.api
        event.input_tokens = prompt.input_tokens
        try:
            async with self._client().post(self.url, data=body) as resp:
                event.status = resp.status
                if resp.status >= 400:
                    text = (await resp.read()).decode("utf-8", errors="replace")
                    _fail(event, clock, f"http_{resp.status}", f"HTTP {resp.status}: {one_line(text)[:200]}")
                    return
                await self._read_stream(resp, event, clock, api)
        except asyncio.CancelledError:
            _fail(event, clock, "cancelled", "cancelled before the answer ended")
            raise
        except TimeoutError:
            _fail(event, clock, "timeout", f"no byte for {self.options.timeout_s:g} s")
        except http.ClientConnectorError as exc:
            _fail(event, clock, "connection", f"cannot connect: {one_line(str(exc))}")
        except http.ClientError as exc:
            kind = "stream_cut" if event.n_chunks else "connection"
            _fail(event, clock, kind, f"{type(exc).__name__}: {one_line(str(exc))}")

    async def _read_stream(self, resp: aiohttp.ClientResponse, event: RequestEvent, clock: Clock, api: str) -> None:
        done = False
        usage: tuple[int, int] | None = None
        async for raw in resp.content:
            if not raw.startswith(b"data:"):
                continue  # blank separators, comments, event: lines
            data = raw[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            now = clock()
            try:
                chunk = json.loads(data)
            except ValueError:
                _fail(event, clock, "invalid_json", f"unparseable stream chunk: {data[:80]!r}")
                return
            if not isinstance(chunk, Mapping):
                continue
            message = chunk_error(chunk)
            if message is not None:
                _fail(event, clock, "stream_error", one_line(message)[:200])
                return
            if chunk_text(chunk, api):
                if event.first_chunk_s is None:
                    event.first_chunk_s = now
                event.chunk_s.append(now)
                event.n_chunks += 1
            usage = chunk_usage(chunk) or usage
        event.end_s = clock()
        if not done:
            event.error, event.error_class = "the stream ended without [DONE]", "stream_cut"
        if usage is not None:
            event.input_tokens, event.output_tokens = usage
            event.token_source = "server"
        else:
            event.output_tokens = event.n_chunks
            event.token_source = "chunks"

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _fail(event: RequestEvent, clock: Clock, error_class: str, message: str) -> None:
    event.end_s = clock()
    event.error, event.error_class = message, error_class
    if event.output_tokens is None:
        event.output_tokens = event.n_chunks
