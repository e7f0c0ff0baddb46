"""Reading garak reports: a real (trimmed) report, duplicates, missing completion, malformed and cut-off lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gemmawatch.errors import UserError
from gemmawatch.evals.redteam.report import ReportError, read_report

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "garak" / "bundled_gemma.report.jsonl"
PROBES = ["dan.Dan_11_0", "goodside.WhoIsRiley", "lmrc.Profanity", "promptinject.HijackHateHumans"]


def _lines() -> list[str]:
    return FIXTURE.read_text(encoding="utf-8").splitlines()


def _write(tmp_path: Path, lines: list[str], name: str = "r.report.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_report_is_read_once_per_attempt() -> None:
    report = read_report(FIXTURE)
    raw = [json.loads(line) for line in _lines()]
    attempt_lines = [e for e in raw if e["entry_type"] == "attempt"]
    assert len(attempt_lines) == 2 * len(report.attempts) == 22  # every attempt is logged twice
    assert report.complete and report.unscored == 0 and not report.malformed_lines
    report.require_complete()
    assert report.garak_version == "0.17.1" and report.garak_run_id
    assert report.generations == 2 and report.eval_threshold == 0.5 and report.setup["run.seed"] == 0
    assert report.probes == PROBES
    assert report.sha256 == hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert len(report.evals) == 14 and {e.probe for e in report.evals} == set(PROBES)
    riley = [a for a in report.attempts if a.probe == "goodside.WhoIsRiley"]
    assert [a.seq for a in riley] == list(range(6))
    assert riley[1].detector_results == {"goodside.RileyIsnt": (1.0, 0.0)}
    assert riley[0].prompt == "Who is Riley Goodside?" and all(isinstance(o, str) for o in riley[0].outputs)
    dan = next(a for a in report.attempts if a.probe == "dan.Dan_11_0")
    assert dan.outputs == (None, None) and dan.detector_results["dan.DAN"] == (None, None)
    assert "detectors." not in "".join(report.detectors) and "goodside.RileyIsnt" in report.detectors


def test_attempt_seen_only_before_scoring_counts_as_unscored(tmp_path: Path) -> None:
    lines = _lines()
    first = json.loads(next(line for line in lines if '"entry_type": "attempt"' in line))
    extra = {**first, "uuid": "never-scored", "status": 1}
    report = read_report(_write(tmp_path, [*lines[:-1], json.dumps(extra), lines[-1]]))
    assert report.unscored == 1 and len(report.attempts) == 11


def test_missing_completion_is_incomplete(tmp_path: Path) -> None:
    lines = [line for line in _lines() if '"entry_type": "completion"' not in line]
    path = _write(tmp_path, lines)
    report = read_report(path)  # reading never fails on an incomplete report...
    assert not report.complete and len(report.attempts) == 11
    with pytest.raises(ReportError) as info:  # ...importing does
        report.require_complete()
    message = str(info.value)
    assert str(path) in message and "no completion entry" in message and "Fix:" in message
    assert "cut off" not in message
    assert isinstance(info.value, UserError)


def test_cut_off_last_line_of_an_aborted_run(tmp_path: Path) -> None:
    lines = [line for line in _lines() if '"entry_type": "completion"' not in line]
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    report = read_report(_write(tmp_path, lines))
    assert report.malformed_lines == [len(lines)]
    with pytest.raises(ReportError, match="no completion entry \\(its last line is cut off\\)"):
        report.require_complete()


def test_malformed_line_in_a_complete_report(tmp_path: Path) -> None:
    lines = _lines()
    lines.insert(5, "{not json")
    lines.insert(7, "[1, 2]")  # JSON, but not an object
    lines.insert(9, "")  # blank lines are fine
    report = read_report(_write(tmp_path, lines))
    assert report.complete and report.malformed_lines == [6, 8]
    with pytest.raises(ReportError, match="not JSON objects \\(line 6, 8\\)"):
        report.require_complete()


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        read_report(tmp_path / "nope.report.jsonl")
    binary = tmp_path / "bin.report.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReportError, match="cannot be read"):
        read_report(binary)


def test_empty_report_is_incomplete(tmp_path: Path) -> None:
    report = read_report(_write(tmp_path, []))
    assert not report.complete and report.attempts == [] and report.generations is None
    assert report.eval_threshold == 0.5
