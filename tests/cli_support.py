"""Helpers to run the real `gemmawatch` CLI in a fresh interpreter and check its contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def gw(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a fresh interpreter."""
    full_env = {**os.environ, **OFFLINE, **(env or {})}
    full_env.pop("GEMMAWATCH_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "gemmawatch.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gemmawatch: error:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def runs_json(db: str) -> list[dict]:
    proc = gw("runs", "list", "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
