"""Start the Streamlit server for the dashboard (``gemmawatch dashboard``).

Streamlit runs in a child process rather than in-process through its
bootstrap API: its CLI is the only stable way to start a server, and a child
keeps Streamlit's signal handlers and event loop out of the caller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from pathlib import Path
from types import FrameType

from sqlalchemy import make_url

__all__ = ["APP_PATH", "absolute_sqlite_url", "serve", "streamlit_command", "wait_healthy"]

#: The Streamlit entry script.
APP_PATH = Path(__file__).resolve().parent / "app.py"


def streamlit_command(host: str, port: int, db_url: str | None = None) -> list[str]:
    """The argv that serves the dashboard on ``host:port``.

    ``db_url`` is not part of the command (it travels in the environment as
    ``GEMMAWATCH_DB``, so a password never shows in ``ps``); the parameter is
    accepted so callers can build command and environment from one place.
    """
    del db_url
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def absolute_sqlite_url(url: str) -> str:
    """Make a relative SQLite path absolute, so the server finds the same file from any directory."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or os.path.isabs(database):
        return url
    return parsed.set(database=os.path.abspath(database)).render_as_string(hide_password=False)


def wait_healthy(base_url: str, *, timeout_s: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll ``<base_url>/_stcore/health`` until it answers ``ok``; False on timeout or if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def serve(host: str = "127.0.0.1", port: int = 8501, db_url: str | None = None, open_browser: bool = False) -> int:
    """Run the dashboard in the foreground until interrupted; return the server's exit status.

    Prints the URL first. SIGINT and SIGTERM are forwarded to the server, so
    Ctrl-C (or a service manager's stop) shuts it down cleanly.
    """
    env = dict(os.environ)
    if db_url:
        env["GEMMAWATCH_DB"] = absolute_sqlite_url(db_url)
    url = f"http://{host}:{port}"
    print(f"gemmawatch dashboard: {url}  (Ctrl-C to stop)", flush=True)
    proc = subprocess.Popen(streamlit_command(host, port, db_url), env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        del frame
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    if open_browser:
        # Open the tab only once the server answers, not onto a connection error.
        threading.Thread(
            target=lambda: wait_healthy(url, proc=proc) and webbrowser.open(url), daemon=True
        ).start()
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # pragma: no cover - only when wait() itself was interrupted
            proc.terminate()
            proc.wait(timeout=10)
