"""Reading a garak report (``<prefix>.report.jsonl``) into plain records.

garak writes one JSON object per line, each with an ``entry_type``:

* ``start_run setup`` - the run's configuration (``run.eval_threshold``, ``run.generations``,
  ``run.seed``, ``plugins.probe_spec``...), as flat ``"section.key"`` fields.
* ``init`` - ``garak_version`` and garak's own run id.
* ``attempt`` - one prompt and its outputs. Every attempt is logged **twice**: with
  ``status`` 1 once the generator answered, and with ``status`` 2 once the detectors
  scored it (``detector_results``: detector -> one score in 0..1 per output, or None).
  Only status-2 entries count; a uuid seen only with status 1 was never scored.
* ``eval`` - garak's own tally per probe and detector (``passed``, ``total_evaluated``).
* ``completion`` - written last. Without it the run stopped early (an aborted detector,
  a crash, a kill), even when garak exited 0: such a report is **incomplete**.

Other entry types (``plugin_cache``, ``probe_summary``, ``digest``...) are ignored.
Edge cases: a line that is not a JSON object makes the report malformed (one error naming
the line), except a cut-off last line of an incomplete report, which is reported as the
incompleteness it is; blank lines are skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.errors import UserError

__all__ = [
    "SCORED_STATUS",
    "GarakAttempt",
    "GarakEval",
    "GarakReport",
    "ReportError",
    "read_report",
]

#: ``status`` of an attempt entry whose outputs the detectors have scored.
SCORED_STATUS = 2
#: garak's default: a detector score at or above it is a hit (the output failed).
DEFAULT_EVAL_THRESHOLD = 0.5


class ReportError(UserError):
    """A garak report that cannot be imported: missing, malformed or incomplete."""


@dataclass(frozen=True)
class GarakAttempt:
    """One scored attempt: a prompt, the target's outputs and every detector's scores.

    ``prompt`` is the text of the last turn (what a ``function`` generator receives);
    ``outputs`` holds None where the generator returned nothing; ``detector_results``
    maps a detector (``encoding.DecodeMatch``) to one score per output, None where the
    detector did not score that output.
    """

    probe: str
    seq: int
    uuid: str
    prompt: str
    outputs: tuple[str | None, ...]
    detector_results: Mapping[str, tuple[float | None, ...]]
    goal: str | None = None


@dataclass(frozen=True)
class GarakEval:
    """garak's own tally of one probe x detector (``passed`` of ``total_evaluated`` outputs)."""

    probe: str
    detector: str
    passed: int
    total_evaluated: int
    nones: int = 0


@dataclass
class GarakReport:
    """Everything gemmawatch imports from one report file.

    ``attempts`` are the scored attempts, one per uuid, in file order; ``unscored``
    counts attempts logged only before scoring. ``complete`` is False when the
    ``completion`` entry is missing.
    """

    path: Path
    sha256: str
    complete: bool
    garak_version: str | None = None
    garak_run_id: str | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    attempts: list[GarakAttempt] = field(default_factory=list)
    evals: list[GarakEval] = field(default_factory=list)
    unscored: int = 0
    malformed_lines: list[int] = field(default_factory=list)

    @property
    def eval_threshold(self) -> float:
        """Score at or above which an output is a hit (``run.eval_threshold``, default 0.5)."""
        value = self.setup.get("run.eval_threshold")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else DEFAULT_EVAL_THRESHOLD

    @property
    def generations(self) -> int | None:
        """Outputs asked per prompt (``run.generations``), None when the setup entry lacks it."""
        value = self.setup.get("run.generations")
        return value if isinstance(value, int) else None

    @property
    def probes(self) -> list[str]:
        """Probes that produced scored attempts, in order of first appearance."""
        return list(dict.fromkeys(a.probe for a in self.attempts))

    @property
    def detectors(self) -> list[str]:
        """Detectors that scored at least one attempt, in order of first appearance."""
        return list(dict.fromkeys(d for a in self.attempts for d in a.detector_results))

    def require_complete(self) -> None:
        """Raise :class:`ReportError` unless the report is complete and well-formed."""
        if not self.complete:
            cut = " (its last line is cut off)" if self.malformed_lines else ""
            raise ReportError(
                f"garak report {self.path} has no completion entry{cut}: garak stopped before the end "
                f"({len(self.attempts)} scored attempts). Fix: read garak's output above or its log, drop "
                "probes whose detectors need a model offline, and run again"
            )
        if self.malformed_lines:
            lines = ", ".join(str(n) for n in self.malformed_lines[:5])
            raise ReportError(
                f"garak report {self.path} has lines that are not JSON objects (line {lines}). "
                "Fix: import the untouched report garak wrote, or run the probes again"
            )


def _text(message: Any) -> str | None:
    """The text of a garak ``Message`` dict (or a bare string, as older reports have)."""
    if isinstance(message, str):
        return message
    if isinstance(message, Mapping):
        text = message.get("text")
        return text if isinstance(text, str) else None
    return None


def _prompt_text(prompt: Any) -> str:
    """The last turn's text of a ``Conversation`` dict (older reports: a plain string)."""
    if isinstance(prompt, Mapping):
        turns = prompt.get("turns")
        if isinstance(turns, Sequence) and turns:
            last = turns[-1]
            if isinstance(last, Mapping):
                return _text(last.get("content")) or ""
        return ""
    return prompt if isinstance(prompt, str) else ""


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _attempt(entry: Mapping[str, Any]) -> GarakAttempt:
    raw_results = entry.get("detector_results") or {}
    results = {
        str(name): tuple(_score(v) for v in scores)
        for name, scores in raw_results.items()
        if isinstance(scores, Sequence) and not isinstance(scores, str)
    }
    outputs = entry.get("outputs") or []
    return GarakAttempt(
        probe=str(entry.get("probe_classname") or "unknown").removeprefix("probes."),
        seq=int(entry.get("seq") or 0),
        uuid=str(entry.get("uuid") or ""),
        prompt=_prompt_text(entry.get("prompt")),
        outputs=tuple(_text(o) for o in outputs),
        detector_results=results,
        goal=entry.get("goal") if isinstance(entry.get("goal"), str) else None,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_report(path: str | Path) -> GarakReport:
    """Read a garak report file; never raises for an incomplete one (see :meth:`GarakReport.require_complete`).

    Raises:
        ReportError: The file does not exist or cannot be read as UTF-8 text.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ReportError(f"garak report {path} does not exist. Fix: pass the .report.jsonl file garak wrote") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"garak report {path} cannot be read ({exc}). Fix: pass a garak .report.jsonl file") from None
    report = GarakReport(path=path, sha256=hashlib.sha256(data).hexdigest(), complete=False)
    scored: dict[str, GarakAttempt] = {}
    started: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            report.malformed_lines.append(number)
            continue
        kind = entry.get("entry_type")
        if kind == "attempt":
            uuid = str(entry.get("uuid") or f"line-{number}")
            if entry.get("status") == SCORED_STATUS:
                scored[uuid] = _attempt(entry)  # a later copy wins; both copies are equal in practice
            else:
                started.add(uuid)
        elif kind == "eval":
            report.evals.append(
                GarakEval(
                    probe=str(entry.get("probe") or "unknown").removeprefix("probes."),
                    detector=str(entry.get("detector") or "unknown").removeprefix("detectors."),
                    passed=_int(entry.get("passed")),
                    total_evaluated=_int(entry.get("total_evaluated")),
                    nones=_int(entry.get("nones")),
                )
            )
        elif kind == "completion":
            report.complete = True
        elif kind == "init":
            report.garak_version = entry.get("garak_version")
            report.garak_run_id = entry.get("run")
        elif kind == "start_run setup":
            report.setup = {k: v for k, v in entry.items() if k != "entry_type"}
    report.attempts = list(scored.values())
    report.unscored = len(started - scored.keys())
    return report
