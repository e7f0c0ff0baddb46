"""A real webhook receiver on 127.0.0.1 for notification tests (Apprise ``json://`` URLs).

    with NotifyReceiver() as rx:
        url = rx.url("hook")            # json://127.0.0.1:PORT/hook
        ...send...
        rx.bodies()                     # parsed JSON bodies of the POSTs received, in order

``fail_first=N`` answers the first N POSTs with ``status_on_fail`` (500), then 200.
:func:`dead_url` is a ``json://`` URL on a port nothing listens on.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from http_servers import free_port


@dataclass
class ReceivedPost:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode(errors="replace")
        owner = self.server.owner
        with owner.lock:
            owner.posts.append(ReceivedPost(self.path, dict(self.headers.items()), body))
            failing = len(owner.posts) <= owner.fail_first
        status = owner.status_on_fail if failing else 200
        payload = b'{"ok": false}' if failing else b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: NotifyReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


@dataclass
class NotifyReceiver:
    """A tiny HTTP server recording POST bodies; use as a context manager."""

    fail_first: int = 0
    status_on_fail: int = 500
    posts: list[ReceivedPost] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="notify-receiver", daemon=True
        )

    def url(self, path: str = "hook") -> str:
        """Apprise ``json://`` URL posting to ``path`` on this receiver."""
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def bodies(self) -> list[Any]:
        """Bodies of the POSTs received so far (JSON-decoded when possible)."""
        with self.lock:
            return [p.body for p in self.posts]

    def __enter__(self) -> NotifyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def dead_url(path: str = "hook") -> str:
    """A ``json://`` URL on a 127.0.0.1 port that was free a moment ago (connection refused)."""
    return f"json://127.0.0.1:{free_port()}/{path}"
