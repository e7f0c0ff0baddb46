"""Real HTTP servers on 127.0.0.1 for backend tests.

* :class:`FaultServer` - a stdlib ``ThreadingHTTPServer`` speaking the OpenAI wire format
  (``/v1/models``, ``/v1/completions``, ``/v1/chat/completions``, SSE streaming) that
  misbehaves on purpose. The behaviour ("mode") comes from the URL path
  (``base_url("500")`` -> ``http://127.0.0.1:PORT/500/v1``) or, per request, from a
  ``[[mode:NAME]]`` marker in the prompt, so one ``generate()`` can mix good and bad
  requests. Every request is recorded (:attr:`FaultServer.records`).
* :func:`llama_cpp_server` / the ``llama_server`` fixture - a REAL ``python -m
  llama_cpp.server`` on the bundled Gemma 3 270M GGUF, on a free port, stopped afterwards.

Modes: ``ok`` (well-behaved stream with keep-alive comments, a multi-line event, usage
when asked, ``[DONE]``), ``nousage`` (never sends usage), ``500``, ``429`` (with
``Retry-After``), ``flaky500`` / ``flaky429`` (fail the first ``fail_times`` requests of that
mode, then behave), ``slow`` (no byte for ``slow_s``), ``cut`` (connection dropped mid-body),
``cut_clean`` (body ends without ``[DONE]`` or ``finish_reason``), ``badjson`` (an invalid
JSON event), ``json`` (ignores ``stream`` and answers with one JSON body), ``nologprobs``
(echo requests get no logprobs), ``auth`` (401 unless the Bearer key matches), ``leak`` (500
whose body echoes the Authorization header), ``models404`` (no ``/models``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_MARKER = re.compile(r"\[\[mode:([a-z0-9_]+)\]\]")
_WORDS = re.compile(r"\s*\S+")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RequestRecord:
    """One request the fault server received."""

    method: str
    path: str
    mode: str
    authorization: str | None
    body: dict[str, Any] | None
    at: float = field(default_factory=time.perf_counter)


def _prompt_text(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    if "messages" in body:
        return " ".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    @property
    def cfg(self) -> FaultServer:
        """The owning FaultServer (its settings)."""
        return self.server.owner

    # -- plumbing ------------------------------------------------------------------------

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, text: str) -> None:
        raw = text.encode()
        self.wfile.write(f"{len(raw):X}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    # -- routing ---------------------------------------------------------------------------

    def _route(self) -> tuple[str, str]:
        parts = self.path.split("?")[0].strip("/").split("/")
        mode = parts[0] if parts and parts[0] != "v1" else "ok"
        endpoint = "/" + "/".join(parts[parts.index("v1") + 1 :]) if "v1" in parts else self.path
        return mode, endpoint

    def do_GET(self) -> None:
        mode, endpoint = self._route()
        self.server.record(RequestRecord("GET", self.path, mode, self.headers.get("Authorization"), None))
        if mode == "auth" and not self._authorized():
            return self._send_json(401, {"error": {"message": "invalid api key"}})
        if endpoint == "/models" and mode != "models404":
            return self._send_json(200, {"object": "list", "data": [{"id": self.cfg.model, "object": "model"}]})
        self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.cfg.api_key}"

    def do_POST(self) -> None:
        mode, endpoint = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if found := _MARKER.search(_prompt_text(body)):
            mode = found.group(1)
        self.server.record(RequestRecord("POST", self.path, mode, self.headers.get("Authorization"), body))
        self._answer(mode, endpoint, body or {})

    def _answer(self, mode: str, endpoint: str, body: dict[str, Any]) -> None:
        srv = self.cfg
        if mode.startswith("flaky") and self.server.count(mode) <= srv.fail_times:
            mode = mode.removeprefix("flaky")
        if mode == "auth" and not self._authorized():
            return self._send_json(401, {"error": {"message": "invalid api key"}})
        if mode == "500":
            return self._send_json(500, {"error": {"message": "internal error (on purpose)"}})
        if mode == "leak":  # a careless server that echoes the request's credentials in its error
            auth = self.headers.get("Authorization")
            return self._send_json(500, {"error": {"message": f"upstream failed for Authorization={auth}"}})
        if mode == "429":
            return self._send_json(429, {"error": {"message": "slow down"}}, {"Retry-After": srv.retry_after})
        if mode == "slow":
            self.server.stopping.wait(srv.slow_s)
        chat = endpoint.endswith("/chat/completions")
        if body.get("echo"):
            return self._send_json(200, self._echo(body, logprobs=mode != "nologprobs"))
        if mode == "json" or not body.get("stream"):
            return self._send_json(200, self._whole(chat))
        self._stream(mode, chat, body)

    # -- answers -----------------------------------------------------------------------------

    def _choice(self, chat: bool, text: str | None, finish: str | None) -> dict[str, Any]:
        if chat:
            return {"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}
        return {"index": 0, "text": text or "", "finish_reason": finish}

    def _whole(self, chat: bool) -> dict[str, Any]:
        text = "".join(self.cfg.tokens)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
        usage = {"prompt_tokens": 5, "completion_tokens": len(self.cfg.tokens)}
        return {"choices": [{**choice, "finish_reason": "stop"}], "usage": usage}

    def _stream(self, mode: str, chat: bool, body: dict[str, Any]) -> None:
        srv = self.cfg
        tokens = list(srv.tokens)[: int(body.get("max_tokens") or len(srv.tokens))]
        self._start_sse()
        self._chunk(": keep-alive\n\n")
        if chat:
            self._chunk("data: " + json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}) + "\n\n")
        for i, token in enumerate(tokens):
            time.sleep(srv.token_delay_s)
            if mode == "badjson" and i == 1:
                self._chunk("data: {not json at all\n\n")
                continue
            if mode in ("cut", "cut_clean") and i == 2:
                return self._abort() if mode == "cut" else self._end_chunks()
            finish = "length" if i == len(tokens) - 1 else None
            event = json.dumps({"choices": [self._choice(chat, token, finish)]})
            if i == 0:  # one event split over two data lines (legal SSE; JSON allows the newline)
                half = event.index(",") + 1
                self._chunk(f"data: {event[:half]}\ndata: {event[half:]}\n\n")
            else:
                self._chunk(f"data: {event}\n\n")
            if i == 1:
                self._chunk(": ping\n\n")
        if mode != "nousage" and (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)}
            self._chunk("data: " + json.dumps({"choices": [], "usage": usage}) + "\n\n")
        self._chunk("data: [DONE]\n\n")
        self._end_chunks()

    def _echo(self, body: dict[str, Any], *, logprobs: bool) -> dict[str, Any]:
        """Echo scoring: one "token" per word, log-prob -0.5 each (the first null), greedy unless 'odd'."""
        prompt = str(body.get("prompt", ""))
        words = [m.group(0) for m in _WORDS.finditer(prompt)] + [" next"]
        offsets, at = [], 0
        for word in words:
            offsets.append(at)
            at += len(word)
        values: list[float | None] = [None] + [-0.5] * (len(words) - 1)
        tops = [None] + [{w: (-0.1 if w.strip() == "odd" else -0.5)} for w in words[1:]]
        choice: dict[str, Any] = {"index": 0, "text": "".join(words), "finish_reason": "length"}
        choice["logprobs"] = (
            {"tokens": words, "text_offset": offsets, "token_logprobs": values, "top_logprobs": tops}
            if logprobs
            else None
        )
        return {"choices": [choice], "usage": {"prompt_tokens": len(words) - 1, "completion_tokens": 1}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: FaultServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.counts: dict[str, int] = {}
        self.open: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Hang up on every client, as a server that goes away would (keep-alive ones included)."""
        with self.lock:
            sockets = list(self.open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on purpose here (timeouts, cut streams); only real bugs are printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self.owner.records.append(record)

    def count(self, mode: str) -> int:
        """How many POSTs of ``mode`` so far, this one included."""
        with self.lock:
            self.counts[mode] = self.counts.get(mode, 0) + 1
            return self.counts[mode]


@dataclass
class FaultServer:
    """A misbehaving OpenAI-compatible server; use as a context manager (see module docstring)."""

    model: str = "fake-gemma"
    api_key: str = "sk-test-secret-0123456789"
    tokens: tuple[str, ...] = ("Hello", ",", " world", " from", " the", " fake", " server", ".")
    token_delay_s: float = 0.01
    slow_s: float = 3.0
    retry_after: str = "1"
    fail_times: int = 2
    records: list[RequestRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    def base_url(self, mode: str = "ok") -> str:
        """Base URL (``.../v1``) whose requests behave as ``mode``."""
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def posts(self, mode: str | None = None) -> list[RequestRecord]:
        """POST requests seen (of ``mode``, if given)."""
        return [r for r in list(self.records) if r.method == "POST" and (mode is None or r.mode == mode)]

    def reset(self) -> None:
        """Forget recorded requests and the flaky counters."""
        with self._server.lock:
            self.records.clear()
            self._server.counts.clear()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    """A FaultServer for the whole module (call ``reset()`` where counts matter)."""
    with FaultServer() as server:
        yield server


# --------------------------------------------------------------------------- #
# The real llama.cpp server on the bundled GGUF
# --------------------------------------------------------------------------- #

LLAMA_ALIAS = "gemma3-270m"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@contextlib.contextmanager
def llama_cpp_server(*, alias: str = LLAMA_ALIAS, startup_s: float = 90.0) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on the bundled GGUF; yield its ``/v1`` base URL; stop it."""
    from gemmawatch.collectors.bundled import bundled_gguf_path

    gguf = bundled_gguf_path()
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--chat_format", "gemma",
        # By default a new request interrupts the stream in flight, which then ends "successfully"
        # with truncated text; queue instead, as a benchmark needs.
        "--interrupt_requests", "False",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
            try:
                deadline = time.monotonic() + startup_s
                base = f"http://127.0.0.1:{port}/v1"
                while not _ready(f"{base}/models"):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"llama_cpp.server did not start (exit {proc.poll()}): {tail}")
                    time.sleep(0.2)
                yield base
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real llama.cpp server on the bundled Gemma, per module."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (extra 'llamacpp')")
    with llama_cpp_server() as url:
        yield url
