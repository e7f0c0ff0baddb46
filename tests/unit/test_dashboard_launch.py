"""Unit tests of the dashboard launcher and the data layer's pure helpers."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gemmawatch.dashboard import launch
from gemmawatch.dashboard.data import thin


def test_streamlit_command_serves_app_on_loopback() -> None:
    cmd = launch.streamlit_command("127.0.0.1", 8765, "postgresql+psycopg://u:secret@h/db")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(cmd[4]) == launch.APP_PATH and launch.APP_PATH.name == "app.py" and launch.APP_PATH.exists()
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags == {
        "--server.address": "127.0.0.1",
        "--server.port": "8765",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
    }
    # The URL (and its password) travels in the environment, never in argv.
    assert not any("secret" in part for part in cmd)


def test_streamlit_config_ships_next_to_app() -> None:
    config = (launch.APP_PATH.parent / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in config and "gatherUsageStats = false" in config
    assert "runOnSave = false" in config and "headless = true" in config


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel/gw.db", f"sqlite:///{Path('rel/gw.db').resolve()}"),
        ("sqlite:////abs/gw.db", "sqlite:////abs/gw.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ],
)
def test_absolute_sqlite_url(url: str, expected: str) -> None:
    assert launch.absolute_sqlite_url(url) == expected


def test_serve_forwards_sigterm_and_returns_child_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen_env = tmp_path / "env.txt"
    child = (
        "import os, sys, time; "
        f"open({str(seen_env)!r}, 'w').write(os.environ.get('GEMMAWATCH_DB', '')); "
        "time.sleep(60)"
    )
    monkeypatch.setattr(launch, "streamlit_command", lambda host, port, db_url: [sys.executable, "-c", child])
    before = signal.getsignal(signal.SIGTERM)

    def stop_when_ready() -> None:
        # Send SIGTERM to ourselves only once serve() forwards it and the child is up.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if signal.getsignal(signal.SIGTERM) is not before and seen_env.exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    threading.Thread(target=stop_when_ready, daemon=True).start()
    status = launch.serve("127.0.0.1", 8599, db_url="sqlite:///x.db")
    assert status == -signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    assert "http://127.0.0.1:8599" in capsys.readouterr().out
    assert seen_env.read_text() == f"sqlite:///{Path('x.db').resolve()}"


def test_wait_healthy_gives_up_when_nothing_listens() -> None:
    start = time.monotonic()
    assert launch.wait_healthy("http://127.0.0.1:9", timeout_s=0.5) is False
    assert time.monotonic() - start < 10


def test_thin_keeps_at_most_n_points_per_metric() -> None:
    frame = pd.DataFrame({"metric": ["a"] * 10 + ["b"] * 3, "value": range(13)})
    out = thin(frame, 4)
    assert out.groupby("metric").size().to_dict() == {"a": 4, "b": 3}
    assert out[out["metric"] == "a"]["value"].tolist() == [0, 3, 6, 9]  # evenly spaced, first kept
    assert thin(pd.DataFrame(), 4).empty
