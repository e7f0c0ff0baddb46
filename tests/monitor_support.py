"""Helpers for the monitor tests: config files, a TCP forwarder, a store with outages, metrics parsing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gemmawatch.collectors.monitor.writer import SqlStore
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.models import Run, Sample, TelemetrySample


def write_config(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed by prometheus_client: ``{(sample name, sorted labels): value}``."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, val) in ls for k, val in labels.items()))


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def stored(url: str) -> dict[str, Any]:
    """Runs, telemetry rows and samples of a database, as plain dicts."""
    engine = get_engine(url)
    with session_scope(engine) as s:
        runs = [dict(r._mapping) for r in s.execute(select(Run.__table__))]
        telemetry = [dict(r._mapping) for r in s.execute(select(TelemetrySample.__table__))]
        samples = [dict(r._mapping) for r in s.execute(select(Sample.__table__))]
    return {"runs": runs, "telemetry": telemetry, "samples": samples}


def probe_rows(rows: list[dict[str, Any]], metric: str, **labels: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["source"] == "probe" and r["metric"] == metric and all(r["labels"].get(k) == v for k, v in labels.items())
    ]


class OutageStore:
    """A real SqlStore whose writes fail like an unreachable server while ``down`` is set."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.run_id = inner.run_id
        self.down = threading.Event()
        self.failed_writes = 0

    def write(self, telemetry: list[dict[str, Any]], samples: list[dict[str, Any]]) -> None:
        if self.down.is_set():
            from sqlalchemy.exc import OperationalError

            self.failed_writes += 1
            raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused (test outage)"))
        self.inner.write(telemetry, samples)

    def evaluate_alerts(self, now: datetime) -> list[dict[str, Any]] | None:
        if self.down.is_set():
            raise ConnectionRefusedError("connection refused (test outage)")
        return self.inner.evaluate_alerts(now)

    def finish(self, status: str, error: str | None = None) -> None:
        self.inner.finish(status, error)


class FakeEndpointDown:
    """Stands in for the alert engine's ``evaluate_series`` with the endpoint-down rule.

    Per target label: the max of ``probe.up`` over the last ``window_s`` seconds of this
    host's rows; < 1 fires, == 1 resolves a firing alert, no rows changes nothing.
    """

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self.firing: set[str] = set()
        self.calls = 0

    def __call__(self, session: Any, *, now: datetime, host: str) -> list[dict[str, Any]]:
        from datetime import timedelta

        self.calls += 1
        t = TelemetrySample
        rows = session.execute(
            select(t.labels, t.value).where(
                t.metric == "probe.up", t.host == host, t.ts >= now - timedelta(seconds=self.window_s)
            )
        ).all()
        best: dict[str, float] = {}
        for labels, value in rows:
            target = labels["target"]
            best[target] = max(best.get(target, 0.0), value)
        out = []
        for target, value in best.items():
            if value < 1:
                new = target not in self.firing
                self.firing.add(target)
                out.append({"rule": "endpoint-down", "state": "firing", "alert_id": target, "new": new,
                            "message": f"endpoint-down on {target}"})  # fmt: skip
            elif target in self.firing:
                self.firing.discard(target)
                out.append({"rule": "endpoint-down", "state": "resolved", "alert_id": target, "new": True,
                            "message": f"endpoint-down resolved on {target}"})  # fmt: skip
        return out


class TcpForwarder:
    """Listens on a fixed 127.0.0.1 port and forwards each connection to ``upstream`` (a port, or None).

    With no upstream (or a dead one) a client is accepted and hung up on at once, as an
    endpoint whose server went away behind a load balancer. Use as a context manager.
    """

    def __init__(self, upstream: int | None = None) -> None:
        self.upstream = upstream
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="tcp-forwarder", daemon=True)

    def base_url(self, path: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> TcpForwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        self.drop_all()
        self._thread.join(timeout=5)

    def drop_all(self) -> None:
        """Hang up every open connection (keep-alive ones too)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()

    def _track(self, *conns: socket.socket) -> None:
        with self._lock:
            self._conns.update(conns)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        port = self.upstream
        try:
            if port is None:
                raise OSError("no upstream")
            server = socket.create_connection(("127.0.0.1", port), timeout=5)
            server.settimeout(None)
        except OSError:
            with contextlib.suppress(OSError):
                client.close()
            return
        self._track(client, server)
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
