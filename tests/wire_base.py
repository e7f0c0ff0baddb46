"""Scripted HTTP servers for wire-format tests: the shared plumbing of ``wire_servers``.

A :class:`WireServer` listens on 127.0.0.1 (free port) in a background thread, records
every request, and streams a scripted reply: ``reply_text`` in ``chunks`` pieces (one
"token" per piece, ``tokens_per_chunk`` counted by the server), ``first_delay_s`` before
the first piece and ``chunk_delay_s`` between the rest, honouring the request's stop
strings and token limit like real servers. Faults (``fault`` for every generation request,
or ``faults`` consumed one per request first): ``http_500``, ``http_429``, ``http_404``,
``stream_cut`` (connection dropped mid-stream), ``slow_first_byte`` (headers after
``slow_s``), ``invalid_json``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Handler", "Recorded", "WireServer", "split_text"]


@dataclass
class Recorded:
    """One request as the server received it (headers lower-cased, body parsed as JSON)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


def split_text(text: str, n: int) -> list[str]:
    """``text`` cut into ``n`` contiguous, near-equal, non-empty pieces (fewer if too short)."""
    n = max(1, min(n, len(text))) if text else 1
    step, extra = divmod(len(text), n)
    pieces, start = [], 0
    for i in range(n):
        end = start + step + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


class WireServer(ThreadingHTTPServer):
    """A scripted server on 127.0.0.1 (free port) run in a background thread; use as a context manager."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.reply_text = "Paris is the capital of France."
        self.chunks = 4
        self.tokens_per_chunk = 1
        self.first_delay_s = 0.03
        self.chunk_delay_s = 0.01
        self.slow_s = 2.0
        self.fault: str | None = None
        self.faults: deque[str | None] = deque()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._lock:  # a stopped server drops its keep-alive connections too
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def track(self, conn: socket.socket, is_open: bool) -> None:
        """Remember open client connections so ``__exit__`` can drop them."""
        with self._lock:
            (self._open.add if is_open else self._open.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) or a cut stream is expected; keep stderr clean."""
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)

    def record(self, item: Recorded) -> None:
        """Append a received request (thread-safe)."""
        with self._lock:
            self.requests.append(item)

    def bodies(self, path_part: str) -> list[Any]:
        """Bodies of the recorded requests whose path contains ``path_part``."""
        with self._lock:
            return [r.body for r in self.requests if path_part in r.path]

    def next_fault(self) -> str | None:
        """The fault for this generation request: scripted ones first, then ``fault``."""
        with self._lock:
            return self.faults.popleft() if self.faults else self.fault

    def script(self, stop: list[str], limit: int | None) -> tuple[list[str], str]:
        """The pieces to stream for one request and the finish reason (stop or length)."""
        text = self.reply_text
        cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
        pieces = [p for p in split_text(text, self.chunks) if p]
        if limit is not None and len(pieces) * self.tokens_per_chunk > limit:
            return pieces[: max(0, limit // self.tokens_per_chunk)], "length"
        return pieces, "stop"


class Handler(BaseHTTPRequestHandler):
    """Shared plumbing: request recording, JSON replies, chunked streaming and faults."""

    protocol_version = "HTTP/1.1"
    server: WireServer

    def setup(self) -> None:
        super().setup()
        # Like Go's net/http (Ollama) and Google's front ends: no Nagle delay on small stream chunks.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):  # the client may already be gone (cut or timed-out streams)
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        return

    def _read(self) -> Recorded:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        item = Recorded(
            self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.server.record(item)
        return item

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        """Drop the connection without the terminating chunk (a crashed server)."""
        self.wfile.flush()
        self.close_connection = True
        self.connection.close()

    def pause(self, seconds: float) -> None:
        self.server.stopping.wait(seconds)

    def error_fault(self, fault: str | None) -> int | None:
        """HTTP status for an error fault, after the slow-first-byte delay if asked."""
        if fault == "slow_first_byte":
            self.pause(self.server.slow_s)
        return {"http_500": 500, "http_429": 429, "http_404": 404}.get(fault or "")


