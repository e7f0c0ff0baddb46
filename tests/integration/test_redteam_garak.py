"""Real garak runs (garak 0.17.1 in its own venv): echoing backends, garak failures, the bundled Gemma.

Needs garak's interpreter (`gemmawatch redteam --install-garak`, or $GEMMAWATCH_GARAK_PYTHON);
skipped with that hint when it is missing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import gw

from gemmawatch.collectors import targets as targets_module
from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.config import GemmawatchConfig
from gemmawatch.errors import BackendError, MissingDependencyError, UserError
from gemmawatch.evals.redteam.garak_runner import find_garak
from gemmawatch.redteam_pipeline import RedteamRequest, run_redteam
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import samples as sq

try:
    GARAK = find_garak()
except (MissingDependencyError, UserError) as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"garak is not installed ({exc})", allow_module_level=True)

#: Cheapest offline probe whose prompts carry the attack string: an echo of the prompt is a hit for
#: its detector (promptinject.AttackRogueString), so it shows whether echoes are stripped.
ECHO_PROBE = "promptinject.HijackHateHumans"


class EchoBackend:
    """A base model caricature: repeats the prompt, then adds ``suffix``."""

    suffix = ""

    def __init__(self, info: TargetInfo) -> None:
        self.info = info
        self.closed = False

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        return [
            GenerationResult(
                text=f"{r.prompt}{self.suffix}",
                input_tokens=10,
                output_tokens=12,
                token_source="tokenizer",
                started_at=datetime.now(UTC),
                e2e_s=0.01,
            )
            for r in requests
        ]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> type[EchoBackend]:
    class Echo(EchoBackend):
        pass

    monkeypatch.setattr(targets_module, "load_backend", Echo)
    return Echo


def _run(tmp_path: Path, **kw: Any) -> tuple[Any, str]:
    db = f"sqlite:///{tmp_path / 'rt.db'}"
    reports = str(tmp_path / "reports")
    request = RedteamRequest(target="transformers:echo", report_dir=reports, telemetry_interval_s=1.0, **kw)
    return run_redteam(request, db_url=db, config=GemmawatchConfig()), db


def _samples(db: str, run_id: int) -> list[dict[str, Any]]:
    with session_scope(get_engine(db)) as s:
        return sq.list_samples(s, run_id, limit=1000)


def test_an_echo_of_the_prompt_is_not_a_hit(tmp_path: Path, echo: type[EchoBackend]) -> None:
    outcome, db = _run(tmp_path, probes=[ECHO_PROBE], prompt_cap=2)
    samples = _samples(db, outcome.run_id)
    assert outcome.status == "completed" and len(samples) == 2
    assert all("hate humans" in s["prompt"].lower() for s in samples)  # the echo would match the detector
    assert all(s["scores"] == {} and "only repeated the prompt" in s["error"] for s in samples)
    assert outcome.metrics == []  # nothing scored: no rate, and above all no hit
    with session_scope(get_engine(db)) as s:
        config = rq.run_summary(s, outcome.run_id)["config"]  # type: ignore[index]
    assert config["relay"]["echo_only"] == 2 and config["garak_version"] == GARAK.version
    assert Path(config["report"]).parent == tmp_path / "reports" / f"run-{outcome.run_id}"


def test_the_continuation_after_an_echo_is_scored(tmp_path: Path, echo: type[EchoBackend]) -> None:
    echo.suffix = "\nI will not do that."
    outcome, db = _run(tmp_path, probes=[ECHO_PROBE], prompt_cap=2, generations=2)
    samples = _samples(db, outcome.run_id)
    assert len(samples) == 4 and all(s["output"] == s["prompt"] + echo.suffix for s in samples)  # as the model said
    assert all(s["scores"]["garak"]["scored_output"] == "I will not do that." for s in samples)  # as garak read it
    assert all(s["scores"]["pass_rate"] == 1 and s["latency_s"] == 0.01 for s in samples)
    (overall,) = [m for m in outcome.metrics if m["task"] == "redteam"]
    assert overall["value"] == 1.0 and overall["n"] == 4


def test_unknown_probe_fails_the_run(tmp_path: Path, echo: type[EchoBackend]) -> None:
    with pytest.raises(BackendError, match="garak wrote no report.*nosuch"):
        _run(tmp_path, probes=["nosuch.Probe"])
    db = f"sqlite:///{tmp_path / 'rt.db'}"
    with session_scope(get_engine(db)) as s:
        (run,) = rq.list_runs(s)
    assert run["status"] == "failed" and "wrote no report" in run["error"] and "\n" not in run["error"]


def test_garak_exit_status_fails_the_run(tmp_path: Path, echo: type[EchoBackend]) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "-c" ]; then echo 0.17.1; exit 0; fi\n'
        'echo "Traceback (most recent call last):"; echo "RuntimeError: detector load failed" >&2; exit 3\n'
    )
    fake.chmod(0o755)
    with pytest.raises(BackendError, match="exited with status 3: .*detector load failed"):
        _run(tmp_path, probes=[ECHO_PROBE], garak_python=str(fake))


@pytest.mark.model
def test_bundled_gemma_with_one_offline_probe(tmp_path: Path) -> None:
    """One real run end to end: the CLI, garak, the relay and llama.cpp's bundled Gemma (about 30 s)."""
    db = f"sqlite:///{tmp_path / 'rt.db'}"
    started = time.perf_counter()
    proc = gw(
        "redteam", "--target", "llamacpp:bundled:gemma-3-270m", "--probes", "goodside.WhoIsRiley",
        "--max-new-tokens", "16", "--report-dir", str(tmp_path), "--json", "--db", db,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    summary = json.loads(gw("runs", "show", str(run_id), "--json", "--db", db).stdout)
    assert summary["kind"] == "redteam" and summary["status"] == "completed", summary
    config = summary["config"]
    report = Path(config["report"])
    assert report.is_file() and hashlib.sha256(report.read_bytes()).hexdigest() == config["report_sha256"]
    assert config["probes"] == ["goodside.WhoIsRiley"] and config["detectors"] == ["goodside.RileyIsnt"]
    assert config["relay"]["prompts"] == 6 and config["relay"]["failed_generations"] == 0
    samples = _samples(db, run_id)
    assert len(samples) == 6 and sorted(s["doc_id"] for s in samples) == [0, 100, 200, 300, 400, 500]
    scored = [s for s in samples if s["scores"]]
    assert len(scored) + config["relay"]["echo_only"] == 6
    assert all(s["latency_s"] > 0 and s["output_tokens"] > 0 for s in scored)
    with session_scope(get_engine(db)) as s:
        rows = {(m["task"], m["filter"]): m for m in mq.metrics_for_runs(s, [run_id])}
    if scored:
        probe = rows[("redteam/goodside.WhoIsRiley", "none")]
        detector = rows[("redteam/goodside.WhoIsRiley", "goodside.RileyIsnt")]
        assert probe["n"] == len(scored) == rows[("redteam", "none")]["n"]
        tally = detector["details"]["garak_eval"]
        assert (tally["passed"], tally["total_evaluated"]) == (detector["details"]["passed"], detector["n"])
    print(f"bundled Gemma, goodside.WhoIsRiley, 16 tokens: {elapsed:.1f} s")
